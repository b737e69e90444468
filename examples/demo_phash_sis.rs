//! The whole core of dealer-free-sis in one process, narrated.
//!
//! Run it with `cargo run --release --example demo_phash_sis`.
//!
//! In practice each storage node runs on its own machine, operated by someone else; here five
//! nodes are five share stores in a temporary folder, and the "network" is a function call
//! that passes the wire bytes of each message. The steps are the ones a real deployment takes:
//! the nodes first generate a joint OPRF key by a distributed key generation (no dealer ever
//! holds it); the owner's client hashes and splits each image, obtains the image's band tokens
//! from the threshold VOPRF under that key, and gives every node one share and the tokens;
//! each node keeps its share durably (integrity-checked under its own key) and indexes the
//! tokens, never seeing a band value or a hash; the client searches by example through the
//! nodes' token indexes, the nodes rank the candidates by a secure Hamming distance on shared
//! hash bits, and the client reconstructs the best match from shares it verifies itself.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dealer_free::dkg::{KeyShare, local};
use dealer_free::identity::{NodeKeys, NodePublicKeys};
use dealer_free::mpc::messages::{DistanceRequest, DistanceResponse};
use dealer_free::mpc::querier::Querier;
use dealer_free::mpc::server::{QueryBounds, answer_candidates};
use dealer_free::mpc::{self, HashBitShares, share_hash_bits};
use dealer_free::oprf::PublicKey;
use dealer_free::oprf::threshold::{PartialEvaluation, verification_shares_from_points};
use dealer_free::oprf::tokens::{self, TokenContext, TokenRequest};
use phr_sis::phash::decode::{PixelData, decode};
use phr_sis::phash::{LumaImage, decode_luma, phash};
use phr_sis::share::{Share, SplitOptions, reconstruct, split_image};
use phr_sis::store::{ImageRecord, MacKey, ShareStore};
use phr_sis::token_index::Token;
use phr_sis::{
    BandLayout, ImageHash, ImageId, NodeId, RankedCandidate, SearchParams, SearchableSISIndex,
    Threshold, TokenIndex,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const NODES: u8 = 5;
const THRESHOLD: u8 = 3;
/// The node whose OPRF service is offline for token requests (it still stores and indexes).
const OPRF_OFFLINE: u8 = 2;

/// One storage node: its share store, its DKG key share and its token index. It holds no
/// hash and no band value.
struct Node {
    id: NodeId,
    store: ShareStore,
    key_share: KeyShare,
    tokens: TokenIndex,
    oprf_online: bool,
}

impl Node {
    /// Answers a token request (wire bytes in, wire bytes out), or `None` when offline.
    fn answer_token_request(
        &self,
        request: &[u8],
        rng: &mut impl rand::CryptoRng,
    ) -> Result<Option<Vec<u8>>, Box<dyn Error>> {
        if !self.oprf_online {
            return Ok(None);
        }
        let request = TokenRequest::from_bytes(request)?;
        let partial = tokens::respond(&self.key_share, &request, rng)?;
        Ok(Some(partial.to_bytes()?))
    }
}

/// What the client knows of the OPRF key: the verification share of every node.
struct OprfPublic {
    context: TokenContext,
    verification_shares: BTreeMap<NodeId, PublicKey>,
    threshold: Threshold,
}

/// The client's side of one token request: blind the hash's bands into one fixed-size
/// request, send it to every node, verify the answers' proofs, combine `t` of them and
/// unblind. Returns the tokens (one per band) and the nodes that answered.
fn band_tokens(
    oprf: &OprfPublic,
    nodes: &[Node],
    hash: ImageHash,
    rng: &mut (impl rand::CryptoRng + ?Sized),
) -> Result<(Vec<Token>, Vec<NodeId>), Box<dyn Error>> {
    let (state, request) = TokenRequest::new(&oprf.context, hash, rng)?;
    let request = request.to_bytes();
    let bands = oprf.context.tokens_per_image();
    if request.len() != TokenRequest::encoded_len(bands, 1) {
        return Err("a token request is not of the fixed size".into());
    }
    let mut partials = Vec::new();
    let mut answered = Vec::new();
    for node in nodes {
        let mut node_rng = rand::rng();
        if let Some(answer) = node.answer_token_request(&request, &mut node_rng)? {
            if answer.len() != PartialEvaluation::encoded_len(bands) {
                return Err("a node's answer is not of the fixed size".into());
            }
            partials.push(PartialEvaluation::from_bytes(&answer)?);
            answered.push(node.id);
        }
    }
    let tokens = tokens::finish(state, &partials, &oprf.verification_shares, oprf.threshold)?;
    Ok((tokens.iter().map(|t| *t.as_bytes()).collect(), answered))
}

fn main() -> Result<(), Box<dyn Error>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let workdir = tempfile::tempdir()?;
    let threshold = Threshold::new(THRESHOLD, NODES)?;
    let mut rng = rand::rng();

    println!("== dealer-free-sis: perceptual-hash search over secret-shared images ==\n");
    println!(
        "Five storage nodes keep our images. Any {} of them can give an image back; {} or fewer\n\
         together learn nothing about it. Each node has its own integrity key and store:",
        threshold.t(),
        threshold.t() - 1
    );
    let mut paths = Vec::new();
    for node in threshold.nodes() {
        let path = workdir.path().join(format!("node-{node}.redb"));
        println!("  node {node}: {}", path.display());
        paths.push((node, path));
    }

    // ---------------------------------------------------------------- Stage 0: key generation
    println!("\n-- Stage 0: the nodes generate the search-token key --");
    println!(
        "The nodes run a distributed key generation (GJKR, four rounds): each ends with a share\n\
         of one OPRF key that nobody holds, and everyone learns every node's public\n\
         verification share. Any {THRESHOLD} nodes can evaluate the OPRF; fewer cannot.\n"
    );
    let mut dkg_rng = ChaCha20Rng::seed_from_u64(2024);
    let run = local::run(
        threshold,
        b"demo_phash_sis",
        &BTreeMap::new(),
        &mut dkg_rng,
        &mut || Duration::ZERO,
    )?;
    let (messages, wire_bytes) = (run.messages(), run.bytes());
    let mut outputs = BTreeMap::new();
    for (id, outcome) in run.outcomes {
        outputs.insert(id, outcome?);
    }
    let first = outputs
        .values()
        .next()
        .ok_or("the DKG produced no output")?;
    let (group_key, shares_public, qualified) = (
        first.group_public_key,
        first.verification_shares.clone(),
        first.qualified.clone(),
    );
    if outputs.len() != usize::from(NODES)
        || outputs.values().any(|o| {
            o.group_public_key != group_key
                || o.verification_shares != shares_public
                || o.qualified != qualified
        })
    {
        return Err("the nodes disagree on the DKG's result".into());
    }
    let qualified: Vec<String> = qualified.iter().map(ToString::to_string).collect();
    println!(
        "  qualified nodes {}; group key {}…; {} messages, {} bytes on the wire",
        qualified.join(", "),
        hex(&group_key.compress().as_bytes()[..8]),
        messages,
        wire_bytes
    );
    let oprf = OprfPublic {
        context: TokenContext::new(b"demo collection", BandLayout::default())?,
        verification_shares: verification_shares_from_points(&shares_public)?,
        threshold,
    };
    let mut nodes = Vec::new();
    for (id, path) in paths {
        let output = outputs.remove(&id).ok_or("a node has no key share")?;
        nodes.push(Node {
            id,
            store: ShareStore::open(&path, MacKey::generate(&mut rng))?,
            key_share: output.key_share,
            tokens: TokenIndex::new(),
            oprf_online: id != NodeId::new(OPRF_OFFLINE)?,
        });
    }

    // ---------------------------------------------------------------- Stage 1: ingest
    let bands = oprf.context.tokens_per_image();
    println!("\n-- Stage 1: ingest --");
    println!(
        "For each image the client computes its 64-bit pHash (identical to Python imagehash's)\n\
         and keeps it to itself. It gets the image's {bands} band tokens from the threshold VOPRF:\n\
         one fixed-size request of {bands} blinded band values ({} bytes) goes to every node;\n\
         node {OPRF_OFFLINE}'s OPRF service is offline, so nodes 1, 3, 4 and 5 each answer with {bands}\n\
         evaluations and one DLEQ proof ({} bytes), and the client checks every proof, combines\n\
         {THRESHOLD} answers and unblinds. It splits the file into {NODES} shares (Shamir over GF(2^8);\n\
         any {THRESHOLD} recover it) and each of the 64 pHash bits into {NODES} shares over the prime\n\
         field 2^61 − 1 (for the secure ranking), and hands node i its shares and the tokens; the\n\
         node stores its shares in one atomic record and indexes the tokens. A node never sees a\n\
         hash or a band value, only which images share one (equal tokens, as for band 0 of some\n\
         images below).\n",
        TokenRequest::encoded_len(bands, 1),
        PartialEvaluation::encoded_len(bands),
    );
    // The owner's own hashes, on the client: the nodes never receive them.
    let mut owner_hashes: BTreeMap<ImageId, ImageHash> = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg")))
        .collect();
    files.sort();
    for path in &files {
        let bytes = std::fs::read(path)?;
        let hash = phash(&decode_luma(&bytes)?);
        let id = ImageId(rng.random());
        let (band_tokens, _) = band_tokens(&oprf, &nodes, hash, &mut rng)?;
        let shares = split_image(&bytes, id, threshold, &SplitOptions::default(), &mut rng)?;
        let all: Vec<NodeId> = threshold.nodes().collect();
        let bit_shares = share_hash_bits(hash, threshold.t(), &all, &mut rng)?;
        for ((node, share), (_, bits)) in nodes.iter_mut().zip(&shares).zip(&bit_shares) {
            let record = ImageRecord {
                share: share.to_bytes(),
                bit_shares: bits.to_bytes().to_vec(),
                meta: Vec::new(),
            };
            node.store.put_image(id, &record)?;
            node.tokens.insert(id, &band_tokens)?;
        }
        owner_hashes.insert(id, hash);
        let name = file_name(path);
        println!(
            "  {id}  pHash {hash}  token 0 {}…  {name} ({} bytes)",
            hex(&band_tokens[0][..4]),
            bytes.len()
        );
        names.insert(id, name);
    }
    println!(
        "\n{} images ingested; every node holds one share and the {bands} tokens of each.",
        owner_hashes.len()
    );

    // ---------------------------------------------------------------- Stage 2: search
    println!("\n-- Stage 2: search by example --");
    let original = fixtures.join("sk_astronaut.png");
    let query = degraded_copy(&original)?;
    let query_hash = phash(&decode_luma(&query)?);
    let moved = phash(&decode_luma(&std::fs::read(&original)?)?).hamming(query_hash);
    let how_far = if moved == 0 {
        "exactly the original's".to_owned()
    } else {
        format!("{moved} bits from the original's")
    };
    println!(
        "The query is {} shrunk to 50% and re-encoded as a JPEG of quality 40 ({} bytes):\n\
         a different file, whose pHash {query_hash} is {how_far}. Its {bands} band tokens come\n\
         from the threshold VOPRF as at ingest; each node looks them up in its token index and\n\
         returns the images that share at least one band (a shared token is a shared band).\n",
        file_name(&original),
        query.len()
    );
    let params = SearchParams {
        topk: 5,
        min_band_votes: 1,
        max_hamming: 20,
    };
    let (query_tokens, answered) = band_tokens(&oprf, &nodes, query_hash, &mut rng)?;
    let answered: Vec<String> = answered.iter().map(ToString::to_string).collect();
    let per_node: Vec<Vec<(ImageId, u32)>> = nodes
        .iter()
        .map(|n| n.tokens.candidates(&query_tokens, params.min_band_votes))
        .collect();
    let candidates = per_node.first().ok_or("no node answered")?.clone();
    if per_node.iter().any(|c| *c != candidates) {
        return Err("the nodes' token indexes disagree".into());
    }
    println!(
        "  query tokens from the answers of nodes {}; all {NODES} token indexes return the same {} candidate{}",
        answered.join(", "),
        candidates.len(),
        if candidates.len() == 1 { "" } else { "s" }
    );
    let hits = secure_ranking(
        &nodes,
        threshold,
        &candidates,
        query_hash,
        &params,
        &mut rng,
    )?;
    println!("  rank  image id          distance  band votes  file");
    for (rank, hit) in hits.iter().enumerate() {
        println!(
            "  {:>4}  {}  {:>8}  {:>10}  {}",
            rank + 1,
            hit.id,
            hit.distance,
            hit.band_votes,
            names.get(&hit.id).map_or("?", String::as_str)
        );
    }
    // Cross-check against the plaintext index over the same hashes (client side only).
    let mut plaintext = SearchableSISIndex::new();
    plaintext.insert_many(owner_hashes.iter().map(|(id, h)| (*id, *h)))?;
    if plaintext.candidates(query_hash, params.min_band_votes) != candidates
        || plaintext.rank_candidates(query_hash, &params) != hits
    {
        return Err("the token search differs from the plaintext index".into());
    }
    println!("  cross-check: equal to SearchableSISIndex::rank_candidates on the same hashes");
    let best = hits.first().ok_or("no match found")?;

    // ---------------------------------------------------------------- retrieval
    println!("\n-- Retrieval: reconstruct the best match --");
    println!(
        "The client asks nodes 1 to 4 for their shares of {}. Node 2 misbehaves and returns a\n\
         share with one byte changed. Every share carries the commitment vector (a hash of every\n\
         node's share), so the client checks each one before using it.\n",
        best.id
    );
    let mut received = Vec::new();
    for node in nodes.iter().take(4) {
        let mut bytes = node.store.get_share(best.id)?.ok_or("share missing")?;
        if node.id == NodeId::new(2)? {
            let last = bytes.len() - 100;
            bytes[last] ^= 0x40;
        }
        received.push(Share::from_bytes(&bytes)?);
        println!("  received {} bytes from node {}", bytes.len(), node.id);
    }
    let done = reconstruct(&received)?;
    for bad in &done.rejected {
        println!("  node {}'s share {} — dropped", bad.node, bad.reason);
    }
    let used: Vec<String> = done.used.iter().map(ToString::to_string).collect();
    println!(
        "  reconstructed from the shares of nodes {}",
        used.join(", ")
    );
    let name = names.get(&best.id).ok_or("unknown id")?;
    let original_bytes = std::fs::read(fixtures.join(name))?;
    if done.image[..] == original_bytes[..] {
        println!(
            "\nThe {} reconstructed bytes are identical to {name}. No node ever held the image\n\
             or its hash, and the misbehaving node was caught and routed around.",
            done.image.len()
        );
        Ok(())
    } else {
        Err("reconstructed bytes differ from the original".into())
    }
}

/// The secure ranking (MPC): the nodes compute masked shares of each candidate's Hamming
/// distance to the query from the bit shares in their stores; the client opens the distances
/// and ranks them.
fn secure_ranking(
    nodes: &[Node],
    threshold: Threshold,
    candidates: &[(ImageId, u32)],
    query: ImageHash,
    params: &SearchParams,
    rng: &mut (impl rand::CryptoRng + ?Sized),
) -> Result<Vec<RankedCandidate>, Box<dyn Error>> {
    let servers: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
    println!(
        "\nThe ranking by Hamming distance runs as a small multi-party computation among the {}\n\
         nodes (any 2t − 1 = {} of them suffice). Ahead of time the nodes deal each other random\n\
         zero-sharings, checked without revealing them, to re-randomise their answers. The\n\
         client shares its query's 64 bits among the nodes and commits to the shares; the\n\
         nodes check together that the shares encode bits, then every node computes, from\n\
         the bit shares in its store, a masked share of each candidate's distance and\n\
         returns 8 bytes per candidate.\n",
        servers.len(),
        threshold.search_quorum(),
    );
    let mut pools = mpc::local::deal_masks(
        threshold,
        &servers,
        candidates.len() + mpc::query::CHECK_MASKS,
        rng,
    )?;
    // Every node lists the candidates (here: the ones found above) and keeps its answer.
    let querier = Querier::new(threshold, query, *params, rng);
    let request = querier.candidate_request(Vec::new());
    let bounds = QueryBounds {
        max_tokens: 1024,
        max_candidates: 100_000,
    };
    let mut answered = BTreeMap::new();
    let mut lists = Vec::new();
    for s in &servers {
        let (state, list) = answer_candidates(*s, &request, bounds, |_, _| candidates.to_vec())?;
        answered.insert(*s, state);
        lists.push((*s, list));
    }
    let agreed = querier.agree(lists)?;
    // The client commits to its query shares; each node checks its own (bits, degree t − 1)
    // and signs its check; the client relays every check to every node.
    let keys: BTreeMap<NodeId, NodeKeys> = servers
        .iter()
        .map(|s| (*s, NodeKeys::generate(*s, rng)))
        .collect();
    let roster: BTreeMap<NodeId, NodePublicKeys> =
        keys.iter().map(|(id, k)| (*id, k.public())).collect();
    let (awaiting, requests) = agreed.share([7; 32], 0, rng)?;
    let request_len = requests.first().map_or(0, |(_, r)| {
        DistanceRequest::encoded_len(r.candidates.len(), servers.len())
    });
    let mut checked = Vec::new();
    let mut checks = Vec::new();
    for (server, request) in requests {
        let bytes = request.to_bytes()?;
        let received = DistanceRequest::from_bytes(&bytes)?;
        let pool = pools.get_mut(&server).ok_or("no masks")?;
        let state = answered.remove(&server).ok_or("no candidates")?;
        let (state, check) = state.check(received, &servers, pool)?;
        checks.push((server, check.sign(&keys[&server], rng)));
        checked.push((server, state));
    }
    let (awaiting, relay) = awaiting.checks(checks, Some(&roster))?;
    let mut answers = Vec::new();
    for (server, state) in checked {
        // On the node: verify every check, read the bit shares from the store, answer.
        let node = nodes
            .iter()
            .find(|n| n.id == server)
            .ok_or("unknown node")?;
        let verified = state.verify(&relay, &roster, threshold.t(), rng)?;
        let response = verified.respond(|id| {
            node.store
                .get_bit_shares(id)
                .ok()
                .flatten()
                .and_then(|b| HashBitShares::from_bytes(&b))
        })?;
        answers.push((server, DistanceResponse::from_bytes(&response.to_bytes()?)?));
    }
    println!("  each node's request: {request_len} bytes");
    let result = awaiting.open(answers)?;
    println!(
        "  the client opens each candidate's distance from the {} shares and ranks as the\n  \
         plaintext index would; no node saw a stored hash or the query's. (With more than\n  \
         2t − 1 nodes answering, the shares form a Reed–Solomon codeword and a node returning\n  \
         wrong shares is corrected and named: tests/secure_distance_corrects_wrong_shares.rs.)\n",
        servers.len()
    );
    Ok(result.hits)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The file shrunk to 50% (Pillow-exact LANCZOS per channel) and saved as JPEG quality 40.
fn degraded_copy(path: &Path) -> Result<Vec<u8>, Box<dyn Error>> {
    let decoded = decode(&std::fs::read(path)?)?;
    let (w, h) = (decoded.width, decoded.height);
    let PixelData::Rgb(rgb) = decoded.data else {
        return Err("the demo query image is expected to be RGB".into());
    };
    let (hw, hh) = ((w / 2).max(1), (h / 2).max(1));
    let channels: Vec<LumaImage> = (0..3)
        .map(|c| {
            let plane = rgb.iter().skip(c).step_by(3).copied().collect();
            LumaImage::new(w, h, plane).map(|p| p.resize_lanczos(hw, hh))
        })
        .collect::<Result<_, _>>()?;
    let mut small = Vec::with_capacity((hw * hh * 3) as usize);
    for i in 0..(hw * hh) as usize {
        for ch in &channels {
            small.push(ch.pixels()[i]);
        }
    }
    let jpeg = std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut comp = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        comp.set_size(hw as usize, hh as usize);
        comp.set_quality(40.0);
        let mut started = comp.start_compress(Vec::new())?;
        started.write_scanlines(&small)?;
        started.finish()
    })
    .map_err(|_| "JPEG encoder failed")??;
    Ok(jpeg)
}
