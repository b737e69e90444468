//! The whole core of dealer-free-sis in one process, narrated.
//!
//! Run it with `cargo run --release --example demo_phash_sis`.
//!
//! In practice each storage node runs on its own machine, operated by someone else; here five
//! nodes are five share stores in a temporary folder, and the "network" is a function call.
//! The steps are the ones a real deployment takes: the owner's client hashes and splits each
//! image, every node keeps one share durably (integrity-checked under its own key), the client
//! searches by example, and it reconstructs the best match from shares it verifies itself.

use std::error::Error;
use std::path::{Path, PathBuf};

use phr_sis::phash::decode::{PixelData, decode};
use phr_sis::phash::{LumaImage, decode_luma, phash};
use phr_sis::share::{Share, SplitOptions, reconstruct, split_image};
use phr_sis::store::{ImageRecord, MacKey, ShareStore};
use phr_sis::{ImageId, NodeId, SearchParams, SearchableSISIndex, Threshold};
use rand::Rng;

const NODES: u8 = 5;
const THRESHOLD: u8 = 3;

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
    let mut stores = Vec::new();
    for node in threshold.nodes() {
        let path = workdir.path().join(format!("node-{node}.redb"));
        stores.push(ShareStore::open(&path, MacKey::generate(&mut rng))?);
        println!("  node {node}: {}", path.display());
    }

    // ---------------------------------------------------------------- Stage 1: ingest
    println!("\n-- Stage 1: ingest --");
    println!(
        "For each image the client computes its 64-bit pHash (identical to Python imagehash's),\n\
         adds it to its search index, splits the file into {NODES} shares (Shamir over GF(2^8);\n\
         any {THRESHOLD} recover it), and hands share i to node i, which stores it atomically.\n"
    );
    let mut index = SearchableSISIndex::new();
    let mut names = std::collections::BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg")))
        .collect();
    files.sort();
    for path in &files {
        let bytes = std::fs::read(path)?;
        let hash = phash(&decode_luma(&bytes)?);
        let id = ImageId(rng.random());
        let shares = split_image(&bytes, id, threshold, &SplitOptions::default(), &mut rng)?;
        for (store, share) in stores.iter().zip(&shares) {
            let record = ImageRecord {
                share: share.to_bytes(),
                ..ImageRecord::default()
            };
            store.put_image(id, &record)?;
        }
        index.insert(id, hash)?;
        let name = file_name(path);
        println!("  {id}  pHash {hash}  {name} ({} bytes)", bytes.len());
        names.insert(id, name);
    }
    println!(
        "\n{} images ingested; every node holds one share of each.",
        index.len()
    );

    // ---------------------------------------------------------------- Stage 2: search
    println!("\n-- Stage 2: search by example --");
    let original = fixtures.join("sk_astronaut.png");
    let query = degraded_copy(&original)?;
    let query_hash = phash(&decode_luma(&query)?);
    println!(
        "The query is {} shrunk to 50% and re-encoded as a JPEG of quality 40 ({} bytes):\n\
         a different file with a different pHash, {query_hash}. Its bands (8 bands of 8 bits)\n\
         select candidates that share at least one band; those are ranked by Hamming distance.\n",
        file_name(&original),
        query.len()
    );
    let params = SearchParams {
        topk: 5,
        min_band_votes: 1,
        max_hamming: 20,
    };
    let hits = index.rank_candidates(query_hash, &params);
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
    for (node, store) in threshold.nodes().zip(&stores).take(4) {
        let mut bytes = store.get_share(best.id)?.ok_or("share missing")?;
        if node == NodeId::new(2)? {
            let last = bytes.len() - 100;
            bytes[last] ^= 0x40;
        }
        received.push(Share::from_bytes(&bytes)?);
        println!("  received {} bytes from node {node}", bytes.len());
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
            "\nThe {} reconstructed bytes are identical to {name}. No node ever held the image,\n\
             and the misbehaving node was caught and routed around.",
            done.image.len()
        );
        Ok(())
    } else {
        Err("reconstructed bytes differ from the original".into())
    }
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
