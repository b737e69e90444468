//! Image shares: splitting an image among n nodes, checking shares, reconstructing from any t.
//!
//! [`split_image`] turns an image file's bytes into `n` [`Share`]s, one per node, such that any
//! `t` of them give the bytes back exactly and any `t − 1` reveal nothing but the size bucket.
//! Two schemes ([`Scheme`]):
//!
//! - **`shamir`** (default): Shamir secret sharing over GF(2^8) of the padded image bytes.
//!   Information-theoretic; each share is as long as the padded image.
//! - **`compact`**: Krawczyk's "secret sharing made short". The padded image is encrypted with
//!   AES-256-GCM under a fresh random key; the ciphertext is cut into `t` fragments and
//!   Reed–Solomon coded into `n`, any `t` of which recover it; the key is Shamir-shared. Each
//!   share is about `size / t`. Secure against nodes that cannot break AES.
//!
//! Every share carries a **commitment vector**: the SHA-256 of every node's share, each bound to
//! the image id, the scheme, `t`, `n`, the lengths and the node's index. Any holder can check
//! its own share ([`Share::verify`]). [`reconstruct`] checks every share it is given, groups the
//! shares that agree on the header and the commitment vector, keeps the largest agreeing group,
//! reconstructs from `t` of them, and reports every other share with the reason it was dropped.
//! With fewer than `t` good shares it fails with [`ShareError::NotEnoughValidShares`], which names
//! the good and the bad nodes — it never returns wrong bytes from a tampered share.
//! [`repair_share`] runs the same checks and computes a lost node's exact share from `t` others
//! (for replacing a storage node without the image), checked against the commitment vector.
//!
//! # Security
//! - Fewer than `t` shares reveal nothing about the image but its padded length ([`Padding`]).
//!   The commitments are hashes of shares, not of the image, so they reveal nothing either.
//! - The commitment vector is chosen by the image owner's client, which split its own image. A
//!   node (or several, fewer than the honest ones among the responders) that alters its share is
//!   detected and routed around. Nodes that collude in a majority of the responders can forge a
//!   consistent but different image; retrieval should ask more nodes than `t` when that matters.
//! - The reconstructed image is zeroized when dropped.

mod commitment;
pub mod format;
pub mod padding;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use rand::CryptoRng;
use zeroize::Zeroizing;

pub use format::ShareFormatError;
pub use padding::Padding;

use crate::gf256;
use crate::shamir::{self, ShamirShare};
use crate::{ImageId, NodeId, ParamsError, Threshold};

/// The largest padded image a share may describe: 1 GiB.
pub const MAX_PADDED_LEN: u64 = 1 << 30;

/// Bytes of the AES-GCM nonce at the start of a compact payload.
const NONCE_LEN: usize = 12;
/// Bytes of the AES-256 key (and of its Shamir share).
const KEY_LEN: usize = 32;
/// Bytes of the AES-GCM tag.
const TAG_LEN: u64 = 16;

/// How an image is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// Shamir over GF(2^8) of the bytes: information-theoretic, share = padded size.
    #[default]
    Shamir,
    /// AES-256-GCM + Reed–Solomon fragments + Shamir-shared key: share ≈ padded size / t.
    Compact,
}

impl Scheme {
    fn code(self) -> u8 {
        match self {
            Scheme::Shamir => 1,
            Scheme::Compact => 2,
        }
    }

    fn from_code(code: u8) -> Option<Scheme> {
        match code {
            1 => Some(Scheme::Shamir),
            2 => Some(Scheme::Compact),
            _ => None,
        }
    }

    /// The name used on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Shamir => "shamir",
            Scheme::Compact => "compact",
        }
    }

    /// Bytes of one node's payload for an image padded to `padded_len`, threshold `t`.
    #[must_use]
    pub fn payload_len(self, padded_len: u64, t: u8) -> u64 {
        match self {
            Scheme::Shamir => padded_len,
            Scheme::Compact => (NONCE_LEN + KEY_LEN) as u64 + fragment_len(padded_len, t),
        }
    }
}

/// Reed–Solomon shard length: the ciphertext split in `t`, rounded up to an even length (the
/// coder works on 16-bit symbols).
fn fragment_len(padded_len: u64, t: u8) -> u64 {
    let per = (padded_len + TAG_LEN).div_ceil(u64::from(t.max(1)));
    per + per % 2
}

/// The fields of a share's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShareHeader {
    /// The sharing scheme.
    pub scheme: Scheme,
    /// `t` of `n`.
    pub threshold: Threshold,
    /// The node holding this share (its x-coordinate).
    pub index: NodeId,
    /// The image this is a share of.
    pub image_id: ImageId,
    /// The image's length in bytes.
    pub original_len: u64,
    /// The length it was padded to before sharing (its size bucket).
    pub padded_len: u64,
}

/// One node's share of one image.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    /// The header.
    pub header: ShareHeader,
    payload: Vec<u8>,
    commitments: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl Share {
    /// The canonical encoding (see [`format`](mod@format)).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Parses a share.
    ///
    /// # Errors
    /// A [`ShareFormatError`] naming what is wrong; never panics, whatever the input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Share, ShareFormatError> {
        format::decode(bytes)
    }

    /// The node holding this share.
    #[must_use]
    pub fn index(&self) -> NodeId {
        self.header.index
    }

    /// The share's payload (its Shamir share, or nonce, key share and fragment).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The commitment vector: one SHA-256 per node, node 1 first.
    #[must_use]
    pub fn commitments(&self) -> &[[u8; 32]] {
        &self.commitments
    }

    /// Whether this share matches its own entry of the commitment vector.
    #[must_use]
    pub fn verify(&self) -> bool {
        let own = commitment::commit(&self.header, &self.payload);
        self.commitments
            .get(usize::from(self.header.index.get()) - 1)
            .is_some_and(|c| commitment::equal(c, &own))
    }
}

/// Options of [`split_image`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SplitOptions {
    /// The sharing scheme.
    pub scheme: Scheme,
    /// How the image length is padded.
    pub padding: Padding,
}

/// Why a share was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadShareReason {
    /// Its payload does not match its own commitment: altered.
    DoesNotMatchCommitment,
    /// It verifies on its own but disagrees with the agreeing shares on the header or the
    /// commitment vector: altered, or from another sharing of the image.
    DisagreesWithOthers,
    /// Another share with the same index was already used.
    DuplicateIndex,
}

impl std::fmt::Display for BadShareReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadShareReason::DoesNotMatchCommitment => "does not match its commitment",
            BadShareReason::DisagreesWithOthers => {
                "disagrees with the other shares' header or commitments"
            }
            BadShareReason::DuplicateIndex => "duplicates another share's index",
        })
    }
}

/// A share that was dropped, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadShare {
    /// The index the share claims.
    pub node: NodeId,
    /// Why it was dropped.
    pub reason: BadShareReason,
}

/// The result of [`reconstruct`].
#[derive(Debug)]
pub struct Reconstruction {
    /// The image's bytes, exactly as split (zeroized on drop).
    pub image: Zeroizing<Vec<u8>>,
    /// The image id.
    pub image_id: ImageId,
    /// The nodes whose shares were used.
    pub used: Vec<NodeId>,
    /// The shares that were dropped, with reasons.
    pub rejected: Vec<BadShare>,
}

/// Why sharing or reconstruction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// The parameters cannot work.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The image is larger than a share can describe.
    #[error("image of {len} bytes is too large to share (limit {max} bytes after padding)")]
    TooLarge {
        /// The image length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// No share was given.
    #[error("no shares given")]
    NoShares,
    /// The shares belong to different images.
    #[error("shares of different images given: {}", ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    MixedImages {
        /// The image ids found.
        ids: Vec<ImageId>,
    },
    /// Fewer than `t` shares verified; nothing was reconstructed.
    #[error(
        "{} valid share{}, {needed} needed; bad shares: {}",
        valid.len(),
        if valid.len() == 1 { "" } else { "s" },
        describe_bad(bad)
    )]
    NotEnoughValidShares {
        /// Shares needed (`t`).
        needed: u8,
        /// The nodes whose shares verified and agree.
        valid: Vec<NodeId>,
        /// The nodes whose shares were dropped, and why.
        bad: Vec<BadShare>,
    },
    /// Two disjoint groups of at least `t` shares each agree among themselves but not with
    /// each other: someone forged a whole sharing.
    #[error(
        "two conflicting groups of valid shares (nodes {first:?} and {second:?}); refusing to choose"
    )]
    Conflicting {
        /// One group.
        first: Vec<NodeId>,
        /// The other group.
        second: Vec<NodeId>,
    },
    /// The compact scheme's ciphertext did not authenticate although every share verified:
    /// the shares were consistently forged.
    #[error(
        "the reconstructed ciphertext failed authentication: the shares were forged consistently"
    )]
    DecryptionFailed,
    /// An internal coding step failed (shard sizes inconsistent).
    #[error("erasure coding failed: {0}")]
    Coding(String),
    /// [`repair_share`] was asked for a node the sharing does not have.
    #[error("node {index} is not one of the sharing's nodes 1..={n}")]
    IndexOutOfRange {
        /// The node asked for.
        index: NodeId,
        /// The number of nodes of the sharing.
        n: u8,
    },
    /// [`repair_share`] interpolated a share that does not match the commitment vector: the
    /// given shares verify one by one but do not lie on one sharing (forged consistently).
    #[error(
        "the shares of nodes {used:?} do not determine node {index}'s share: the repaired \
         share does not match its commitment"
    )]
    RepairMismatch {
        /// The node whose share was to be repaired.
        index: NodeId,
        /// The nodes whose shares were interpolated.
        used: Vec<NodeId>,
    },
}

fn describe_bad(bad: &[BadShare]) -> String {
    if bad.is_empty() {
        return "none".to_owned();
    }
    bad.iter()
        .map(|b| format!("node {} ({})", b.node, b.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits an image into one share per node `1..=n`.
///
/// # Errors
/// [`ShareError::TooLarge`] above 1 GiB after padding.
///
/// # Security
/// `rng` must be a cryptographically secure generator; everything the shares hide comes from it.
pub fn split_image<R: CryptoRng + ?Sized>(
    image: &[u8],
    image_id: ImageId,
    threshold: Threshold,
    options: &SplitOptions,
    rng: &mut R,
) -> Result<Vec<Share>, ShareError> {
    let original_len = image.len() as u64;
    let padded_len = options.padding.bucket(original_len);
    if padded_len > MAX_PADDED_LEN {
        return Err(ShareError::TooLarge {
            len: original_len,
            max: MAX_PADDED_LEN,
        });
    }
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len as usize));
    padded.extend_from_slice(image);
    padded.resize(padded_len as usize, 0);
    let header = |index| ShareHeader {
        scheme: options.scheme,
        threshold,
        index,
        image_id,
        original_len,
        padded_len,
    };
    let payloads: Vec<(NodeId, Vec<u8>)> = match options.scheme {
        Scheme::Shamir => shamir::split(&padded, threshold, rng)
            .into_iter()
            .map(|s| (s.id, s.data.to_vec()))
            .collect(),
        Scheme::Compact => compact_payloads(&padded, &header(NodeId::new(1)?), rng)?,
    };
    let commitments: Vec<[u8; 32]> = payloads
        .iter()
        .map(|(id, p)| commitment::commit(&header(*id), p))
        .collect();
    Ok(payloads
        .into_iter()
        .map(|(id, payload)| Share {
            header: header(id),
            payload,
            commitments: commitments.clone(),
        })
        .collect())
}

/// Compact scheme: nonce ‖ key share ‖ fragment for every node.
fn compact_payloads<R: CryptoRng + ?Sized>(
    padded: &[u8],
    header: &ShareHeader,
    rng: &mut R,
) -> Result<Vec<(NodeId, Vec<u8>)>, ShareError> {
    let threshold = header.threshold;
    let (t, n) = (usize::from(threshold.t()), usize::from(threshold.n()));
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill_bytes(key.as_mut());
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let frag = fragment_len(header.padded_len, threshold.t()) as usize;
    let payload_len = header.scheme.payload_len(header.padded_len, threshold.t()) as u32;
    let aad = format::common_header(header, payload_len);
    let cipher =
        Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| ShareError::Coding(e.to_string()))?;
    let mut ciphertext = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: padded,
                aad: &aad,
            },
        )
        .map_err(|e| ShareError::Coding(e.to_string()))?;
    ciphertext.resize(t * frag, 0);
    let originals: Vec<&[u8]> = ciphertext.chunks_exact(frag).collect();
    let recovery = if n > t {
        reed_solomon_simd::encode(t, n - t, &originals)
            .map_err(|e| ShareError::Coding(e.to_string()))?
    } else {
        Vec::new()
    };
    let key_shares = shamir::split(key.as_ref(), threshold, rng);
    let fragments = originals
        .iter()
        .copied()
        .chain(recovery.iter().map(Vec::as_slice));
    Ok(key_shares
        .into_iter()
        .zip(fragments)
        .map(|(ks, fragment)| {
            let mut p = Vec::with_capacity(NONCE_LEN + KEY_LEN + frag);
            p.extend_from_slice(&nonce);
            p.extend_from_slice(&ks.data);
            p.extend_from_slice(fragment);
            (ks.id, p)
        })
        .collect())
}

/// Shares that agree on the header (index aside) and on the commitment vector.
struct Group<'a> {
    header: ShareHeader,
    commitments: &'a [[u8; 32]],
    members: Vec<&'a Share>,
}

/// The outcome of checking a set of shares: the agreeing group to work from and the shares
/// left out of it.
struct Selection<'a> {
    /// The group's header, with the index of the first share given.
    header: ShareHeader,
    /// The group's commitment vector.
    commitments: &'a [[u8; 32]],
    /// At least `t` shares, every one verified and agreeing, sorted by index.
    members: Vec<&'a Share>,
    /// Every other share, with why it was left out, sorted by node.
    rejected: Vec<BadShare>,
}

/// The checks shared by [`reconstruct`] and [`repair_share`] (steps 1, 2 and 4 of the
/// documented procedure): drops the shares that fail their own commitment, groups the rest by
/// (header, commitment vector), keeps the largest group (refusing two equally large groups of
/// `t` or more), and requires at least `t` members.
fn select(shares: &[Share]) -> Result<Selection<'_>, ShareError> {
    let first = shares.first().ok_or(ShareError::NoShares)?;
    let mut ids: Vec<ImageId> = shares.iter().map(|s| s.header.image_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > 1 {
        return Err(ShareError::MixedImages { ids });
    }

    // Group the shares that verify by (header fields, commitment vector).
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut rejected = Vec::new();
    for share in shares {
        if !share.verify() {
            rejected.push(BadShare {
                node: share.index(),
                reason: BadShareReason::DoesNotMatchCommitment,
            });
            continue;
        }
        let header = ShareHeader {
            index: first.header.index,
            ..share.header
        };
        match groups
            .iter_mut()
            .find(|g| g.header == header && g.commitments == share.commitments())
        {
            Some(group) if group.members.iter().any(|m| m.index() == share.index()) => {
                rejected.push(BadShare {
                    node: share.index(),
                    reason: BadShareReason::DuplicateIndex,
                });
            }
            Some(group) => group.members.push(share),
            None => groups.push(Group {
                header,
                commitments: share.commitments(),
                members: vec![share],
            }),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.members.len()));
    let mut groups = groups.into_iter();
    let Some(Group {
        header,
        commitments,
        mut members,
    }) = groups.next()
    else {
        return Err(ShareError::NotEnoughValidShares {
            needed: first.header.threshold.t(),
            valid: Vec::new(),
            bad: rejected,
        });
    };
    let t = header.threshold.t();
    for other in groups {
        if other.members.len() == members.len() && members.len() >= usize::from(t) {
            return Err(ShareError::Conflicting {
                first: members.iter().map(|s| s.index()).collect(),
                second: other.members.iter().map(|s| s.index()).collect(),
            });
        }
        rejected.extend(other.members.iter().map(|s| BadShare {
            node: s.index(),
            reason: BadShareReason::DisagreesWithOthers,
        }));
    }
    rejected.sort_by_key(|b| b.node);
    members.sort_by_key(|s| s.index());
    if members.len() < usize::from(t) {
        return Err(ShareError::NotEnoughValidShares {
            needed: t,
            valid: members.iter().map(|s| s.index()).collect(),
            bad: rejected,
        });
    }
    Ok(Selection {
        header,
        commitments,
        members,
        rejected,
    })
}

/// A compact payload cut into its parts.
struct CompactPart {
    node: NodeId,
    nonce: [u8; NONCE_LEN],
    key_share: Vec<u8>,
    fragment: Vec<u8>,
}

impl CompactPart {
    /// The parts of a compact share's payload; `None` if it is too short to hold them.
    fn of(s: &Share) -> Option<CompactPart> {
        let (nonce, rest) = s.payload.split_at_checked(NONCE_LEN)?;
        let (key, fragment) = rest.split_at_checked(KEY_LEN)?;
        Some(CompactPart {
            node: s.index(),
            nonce: nonce.try_into().ok()?,
            key_share: key.to_vec(),
            fragment: fragment.to_vec(),
        })
    }
}

/// Verifies the shares, drops the bad ones and reconstructs the image from `t` good ones.
///
/// # Errors
/// [`ShareError::NotEnoughValidShares`] (naming good and bad nodes) when fewer than `t` shares
/// verify and agree; [`ShareError::MixedImages`] when the shares carry different image ids;
/// [`ShareError::NoShares`]; [`ShareError::Conflicting`]; [`ShareError::DecryptionFailed`].
/// Never returns bytes that differ from the image that was split, unless a majority of the
/// given shares were forged together (see the module's security notes).
pub fn reconstruct(shares: &[Share]) -> Result<Reconstruction, ShareError> {
    let Selection {
        header,
        mut members,
        rejected,
        ..
    } = select(shares)?;
    let t = header.threshold.t();
    members.truncate(usize::from(t));
    let image = match header.scheme {
        Scheme::Shamir => {
            let parts: Vec<ShamirShare> = members
                .iter()
                .map(|s| ShamirShare::new(s.index(), s.payload.clone()))
                .collect();
            let mut padded =
                shamir::combine(&parts, t).map_err(|e| ShareError::Coding(e.to_string()))?;
            padded.truncate(header.original_len as usize);
            padded.into_zeroizing()
        }
        Scheme::Compact => compact_reconstruct(&header, &members)?,
    };
    Ok(Reconstruction {
        image,
        image_id: header.image_id,
        used: members.iter().map(|s| s.index()).collect(),
        rejected,
    })
}

/// The `t` original fragments of a compact sharing from any `t` nodes' parts (node `i ≤ t`
/// holds original fragment `i`, node `i > t` recovery fragment `i − t`).
fn original_fragments(
    threshold: Threshold,
    parts: &[CompactPart],
) -> Result<Vec<Vec<u8>>, ShareError> {
    let (t, n) = (usize::from(threshold.t()), usize::from(threshold.n()));
    let mut originals: Vec<Option<Vec<u8>>> = vec![None; t];
    let mut recovery = Vec::new();
    for part in parts {
        let i = usize::from(part.node.get()) - 1;
        if i < t {
            if let Some(slot) = originals.get_mut(i) {
                *slot = Some(part.fragment.clone());
            }
        } else {
            recovery.push((i - t, part.fragment.clone()));
        }
    }
    if originals.iter().any(Option::is_none) {
        let given = originals
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (i, f.as_slice())));
        let restored = reed_solomon_simd::decode(
            t,
            n.saturating_sub(t),
            given,
            recovery.iter().map(|(i, f)| (*i, f.as_slice())),
        )
        .map_err(|e| ShareError::Coding(e.to_string()))?;
        for (i, shard) in restored {
            if let Some(slot) = originals.get_mut(i) {
                *slot = Some(shard);
            }
        }
    }
    originals
        .into_iter()
        .map(|f| f.ok_or_else(|| ShareError::Coding("missing fragment".to_owned())))
        .collect()
}

fn compact_reconstruct(
    header: &ShareHeader,
    members: &[&Share],
) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    let t = usize::from(header.threshold.t());
    let frag = fragment_len(header.padded_len, header.threshold.t()) as usize;
    let coding = |e: &dyn std::fmt::Display| ShareError::Coding(e.to_string());
    let parts: Vec<CompactPart> = members.iter().filter_map(|s| CompactPart::of(s)).collect();
    let nonce = parts
        .first()
        .map(|p| p.nonce)
        .ok_or_else(|| ShareError::Coding("empty compact payload".to_owned()))?;
    let key_shares: Vec<ShamirShare> = parts
        .iter()
        .map(|p| ShamirShare::new(p.node, p.key_share.clone()))
        .collect();
    let key = shamir::combine(&key_shares, header.threshold.t()).map_err(|e| coding(&e))?;
    let mut ciphertext = Vec::with_capacity(t * frag);
    for shard in original_fragments(header.threshold, &parts)? {
        ciphertext.extend_from_slice(&shard);
    }
    ciphertext.truncate((header.padded_len + TAG_LEN) as usize);
    let payload_len = header
        .scheme
        .payload_len(header.padded_len, header.threshold.t()) as u32;
    let aad = format::common_header(header, payload_len);
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| coding(&e))?;
    let mut padded = Zeroizing::new(
        cipher
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| ShareError::DecryptionFailed)?,
    );
    padded.truncate(header.original_len as usize);
    Ok(padded)
}

/// Computes the exact share node `index` holds of an image, from the shares of `t` (or more)
/// other nodes: for replacing a lost or corrupted storage node without the image itself.
///
/// The shares are checked exactly as [`reconstruct`] checks them (shares failing their own
/// commitment are dropped, the largest group agreeing on header and commitment vector is kept,
/// two equally large groups of `t` or more are refused). If the group holds a share of
/// `index` itself, that share is returned. Otherwise the first `t` members (by node id) are
/// interpolated at `x = index` instead of at 0:
///
/// - **shamir**: byte `k` of the result is `Σ_j λ_j(index) · share_j[k]` over GF(2^8);
/// - **compact**: the key share is interpolated the same way, the nonce copied, and the
///   fragment recomputed: the `t` original fragments are recovered from the members' (with
///   Reed–Solomon decoding when some are missing), the `n − t` recovery fragments re-encoded
///   as [`split_image`] does, and fragment `index` taken.
///
/// The result carries the group's header (with `index`) and commitment vector.
///
/// # Guarantees
/// The returned share always matches `commitments[index − 1]` of the agreeing group
/// ([`Share::verify`] holds), so it is byte for byte the share [`split_image`] made for that
/// node whenever the group is genuine. Never panics, whatever the input. The input shares
/// themselves reveal the image to whoever computes this: run it on the owner's client, and
/// send the result only to the replacement node.
///
/// # Errors
/// As [`reconstruct`]: [`ShareError::NoShares`], [`ShareError::MixedImages`],
/// [`ShareError::NotEnoughValidShares`] (fewer than `t` good, agreeing shares),
/// [`ShareError::Conflicting`]; then [`ShareError::IndexOutOfRange`] when `index > n`, and
/// [`ShareError::RepairMismatch`] when the interpolated share does not match its commitment
/// (the shares verify individually but do not lie on one sharing, i.e. they were forged
/// consistently). [`ShareError::Coding`] if erasure coding fails.
pub fn repair_share(shares: &[Share], index: NodeId) -> Result<Share, ShareError> {
    let Selection {
        header,
        commitments,
        mut members,
        ..
    } = select(shares)?;
    let threshold = header.threshold;
    if index.get() > threshold.n() {
        return Err(ShareError::IndexOutOfRange {
            index,
            n: threshold.n(),
        });
    }
    if let Some(own) = members.iter().find(|s| s.index() == index) {
        return Ok((*own).clone());
    }
    members.truncate(usize::from(threshold.t()));
    let expected = header.scheme.payload_len(header.padded_len, threshold.t());
    if let Some(s) = members.iter().find(|s| s.payload.len() as u64 != expected) {
        return Err(ShareError::Coding(format!(
            "the payload of node {} has {} bytes, {expected} expected",
            s.index(),
            s.payload.len()
        )));
    }
    let points: Vec<u8> = members.iter().map(|s| s.index().get()).collect();
    let lambdas = shamir::lagrange_at(&points, index.get());
    let payload = match header.scheme {
        Scheme::Shamir => {
            let srcs: Vec<&[u8]> = members.iter().map(|s| s.payload.as_slice()).collect();
            let mut out = vec![0u8; srcs.first().map_or(0, |s| s.len())];
            gf256::lin_comb(&mut out, &srcs, &lambdas);
            out
        }
        Scheme::Compact => compact_repair(threshold, &members, &lambdas, index)?,
    };
    let repaired = Share {
        header: ShareHeader { index, ..header },
        payload,
        commitments: commitments.to_vec(),
    };
    if !repaired.verify() {
        return Err(ShareError::RepairMismatch {
            index,
            used: members.iter().map(|s| s.index()).collect(),
        });
    }
    Ok(repaired)
}

/// The compact payload of node `index` from `t` members' (all of the scheme's length) and the
/// Lagrange coefficients of the members at `index`.
fn compact_repair(
    threshold: Threshold,
    members: &[&Share],
    lambdas: &[u8],
    index: NodeId,
) -> Result<Vec<u8>, ShareError> {
    let (t, n) = (usize::from(threshold.t()), usize::from(threshold.n()));
    let parts = members
        .iter()
        .map(|s| CompactPart::of(s))
        .collect::<Option<Vec<CompactPart>>>()
        .ok_or_else(|| ShareError::Coding("compact payload too short".to_owned()))?;
    let nonce = parts
        .first()
        .map(|p| p.nonce)
        .ok_or_else(|| ShareError::Coding("empty compact payload".to_owned()))?;
    let key_srcs: Vec<&[u8]> = parts.iter().map(|p| p.key_share.as_slice()).collect();
    let mut key_share = Zeroizing::new(vec![0u8; KEY_LEN]);
    gf256::lin_comb(&mut key_share, &key_srcs, lambdas);
    let originals = original_fragments(threshold, &parts)?;
    let i = usize::from(index.get()) - 1;
    let fragment = if i < t {
        originals.into_iter().nth(i)
    } else {
        let refs: Vec<&[u8]> = originals.iter().map(Vec::as_slice).collect();
        reed_solomon_simd::encode(t, n - t, &refs)
            .map_err(|e| ShareError::Coding(e.to_string()))?
            .into_iter()
            .nth(i - t)
    }
    .ok_or_else(|| ShareError::Coding(format!("no fragment for node {index}")))?;
    let mut payload = Vec::with_capacity(NONCE_LEN + KEY_LEN + fragment.len());
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&key_share);
    payload.extend_from_slice(&fragment);
    Ok(payload)
}

#[cfg(test)]
mod repair_tests;

#[cfg(test)]
mod message_tests {
    use super::*;

    #[test]
    fn one_valid_share_is_said_in_the_singular() -> Result<(), Box<dyn std::error::Error>> {
        let one = ShareError::NotEnoughValidShares {
            needed: 3,
            valid: vec![NodeId::new(1)?],
            bad: Vec::new(),
        };
        assert!(
            one.to_string().starts_with("1 valid share, 3 needed"),
            "{one}"
        );
        let two = ShareError::NotEnoughValidShares {
            needed: 3,
            valid: vec![NodeId::new(1)?, NodeId::new(2)?],
            bad: Vec::new(),
        };
        assert!(
            two.to_string().starts_with("2 valid shares, 3 needed"),
            "{two}"
        );
        Ok(())
    }
}
