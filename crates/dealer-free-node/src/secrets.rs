//! A node's secrets at rest, sealed with AES-256-GCM under its at-rest key.
//!
//! The file `secrets.bin` in the node's data folder holds its long-term identity keys
//! (signing and Diffie–Hellman), the MAC key of its share store and, once the DKG has run,
//! its key share with the public key state of the collection. The at-rest key comes from the
//! node's config (`key_file`) or environment (`key_env`), never from the data folder; a copy
//! of the data folder alone reveals none of these secrets.
//!
//! Layout: `"DFSSEC01"` · nonce (12) · AES-256-GCM ciphertext and tag, the magic and the
//! node id bound in as associated data (a file of another node does not open). The file is
//! written through [`crate::files::write_secret`]: a fresh temporary file of mode `0600`,
//! synced and renamed, the folder synced, so it is always either the old or the new version
//! and never readable by another user. Every secret is zeroized on drop, and the plaintext
//! is encoded into a buffer sized exactly beforehand, so no reallocation leaves an
//! unzeroized copy of a secret in freed memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use curve25519_dalek::ristretto::RistrettoPoint;
use dealer_free::dkg::KeyShare;
use dealer_free::identity::{NodeKeys, NodePublicKeys};
use dealer_free::wire::decode_point;
use phr_sis::store::MacKey;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8; 8] = b"DFSSEC01";
/// Version 2 adds the prepared resharing's slot; version 1 files still open.
const VERSION: u8 = 2;

/// Errors of the secrets file and the at-rest key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No usable at-rest key.
    #[error("at-rest key: {0}")]
    Key(String),
    /// The file does not open under this key and node id (wrong key, another node's file,
    /// or changed on disk).
    #[error(
        "{0}: does not decrypt with this node's at-rest key (wrong key, another node's file, or tampered)"
    )]
    Unauthentic(PathBuf),
    /// The file opened but its contents are malformed.
    #[error("{path}: malformed secrets: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The 32-byte key that seals a node's secrets.
pub struct AtRestKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRestKey(<redacted>)")
    }
}

impl AtRestKey {
    /// A fresh random key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> AtRestKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        AtRestKey(k)
    }

    /// The key from 64 hex digits (surrounding white space ignored).
    ///
    /// # Errors
    /// [`SecretsError::Key`] for anything else.
    pub fn from_hex(text: &str) -> Result<AtRestKey, SecretsError> {
        let mut bytes = Zeroizing::new(crate::unhex(text).unwrap_or_default());
        let mut k = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(SecretsError::Key("must be 64 hex digits (32 bytes)".into()));
        }
        k.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(AtRestKey(k))
    }

    /// The key as 64 hex digits (to write a key file).
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::hex(self.0.as_ref()))
    }

    /// The key from the file `key_file` or the environment variable `key_env`.
    ///
    /// # Errors
    /// [`SecretsError::Key`] naming the source and the problem.
    pub fn load(key_file: Option<&Path>, key_env: Option<&str>) -> Result<AtRestKey, SecretsError> {
        match (key_file, key_env) {
            (Some(path), _) => {
                let text = Zeroizing::new(
                    std::fs::read_to_string(path)
                        .map_err(|e| SecretsError::Key(format!("{}: {e}", path.display())))?,
                );
                AtRestKey::from_hex(&text)
                    .map_err(|e| SecretsError::Key(format!("{}: {e}", path.display())))
            }
            (None, Some(var)) => {
                let text = Zeroizing::new(std::env::var(var).map_err(|_| {
                    SecretsError::Key(format!("the environment variable {var} is not set"))
                })?);
                AtRestKey::from_hex(&text).map_err(|e| SecretsError::Key(format!("${var}: {e}")))
            }
            (None, None) => Err(SecretsError::Key("no key_file or key_env given".into())),
        }
    }
}

/// The collection's key state a node holds after the DKG.
#[derive(Clone)]
pub struct ClusterKey {
    /// `t` of `n`.
    pub threshold: Threshold,
    /// The node's key share.
    pub key_share: KeyShare,
    /// The group public key.
    pub group_public_key: RistrettoPoint,
    /// Every confirmed node's verification share.
    pub verification_shares: BTreeMap<NodeId, RistrettoPoint>,
    /// The DKG transcript hash.
    pub transcript: [u8; 32],
    /// Every participant's public identity keys, as the DKG used them.
    pub participants: BTreeMap<NodeId, NodePublicKeys>,
}

/// A resharing this node prepared and has not committed or rolled back: its new key state,
/// sealed beside the old one, which stays in use until the commit.
#[derive(Clone)]
pub struct PreparedKey {
    /// The resharing's label.
    pub label: Vec<u8>,
    /// The new key state the commit installs.
    pub key: ClusterKey,
}

/// Every secret of one node.
#[derive(Clone)]
pub struct NodeSecrets {
    /// Identity keys.
    pub keys: NodeKeys,
    /// The share store's MAC key.
    pub mac_key: MacKey,
    /// The DKG's outcome, once it ran (the key the node serves with).
    pub cluster: Option<ClusterKey>,
    /// A prepared resharing, waiting for its commit or roll-back.
    pub prepared: Option<PreparedKey>,
}

impl std::fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSecrets")
            .field("node", &self.keys.id())
            .field("has_key", &self.cluster.is_some())
            .field("prepared", &self.prepared.is_some())
            .finish_non_exhaustive()
    }
}

/// The secrets file of the data folder `dir`.
#[must_use]
pub fn secrets_path(dir: &Path) -> PathBuf {
    dir.join("secrets.bin")
}

fn aad(node: NodeId) -> Vec<u8> {
    let mut a = MAGIC.to_vec();
    a.push(node.get());
    a
}

fn cipher(key: &AtRestKey) -> Aes256Gcm {
    Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(key.0.as_ref()))
}

/// The encoded length of a key state.
fn key_len(c: &ClusterKey) -> usize {
    // t, n, key share, group key, transcript, two counts, the two lists
    2 + 32 + 32 + 32 + 1 + c.verification_shares.len() * 33 + 1 + c.participants.len() * 65
}

fn put_key(out: &mut ExactBuf, c: &ClusterKey) -> Result<(), SecretsError> {
    out.put(&[c.threshold.t(), c.threshold.n()]);
    out.put(c.key_share.to_bytes().as_ref());
    out.put(c.group_public_key.compress().as_bytes());
    out.put(&c.transcript);
    out.put(&[count(c.verification_shares.len())?]);
    for (id, p) in &c.verification_shares {
        out.put(&[id.get()]);
        out.put(p.compress().as_bytes());
    }
    out.put(&[count(c.participants.len())?]);
    for (id, p) in &c.participants {
        out.put(&[id.get()]);
        out.put(&p.to_bytes());
    }
    Ok(())
}

fn read_key(
    r: &mut Cursor<'_>,
    id: NodeId,
    bad: &dyn Fn(&str) -> SecretsError,
) -> Result<ClusterKey, SecretsError> {
    let t = r.u8().ok_or_else(|| bad("truncated"))?;
    let n = r.u8().ok_or_else(|| bad("truncated"))?;
    let threshold = Threshold::new(t, n).map_err(|e| bad(&e.to_string()))?;
    let share: [u8; 32] = r.array().ok_or_else(|| bad("truncated key share"))?;
    let key_share = KeyShare::from_bytes(id, &share).map_err(|e| bad(&e.to_string()))?;
    let group: [u8; 32] = r.array().ok_or_else(|| bad("truncated group key"))?;
    let group_public_key = decode_point(&group).ok_or_else(|| bad("group key is no point"))?;
    let transcript: [u8; 32] = r.array().ok_or_else(|| bad("truncated transcript"))?;
    let count = r.u8().ok_or_else(|| bad("truncated"))?;
    let mut verification_shares = BTreeMap::new();
    for _ in 0..count {
        let node =
            NodeId::new(r.u8().ok_or_else(|| bad("truncated"))?).map_err(|_| bad("node id 0"))?;
        let p: [u8; 32] = r.array().ok_or_else(|| bad("truncated share"))?;
        let point = decode_point(&p).ok_or_else(|| bad("share is no point"))?;
        verification_shares.insert(node, point);
    }
    let count = r.u8().ok_or_else(|| bad("truncated"))?;
    let mut participants = BTreeMap::new();
    for _ in 0..count {
        let node =
            NodeId::new(r.u8().ok_or_else(|| bad("truncated"))?).map_err(|_| bad("node id 0"))?;
        let p: [u8; 64] = r.array().ok_or_else(|| bad("truncated keys"))?;
        let keys = NodePublicKeys::from_bytes(&p).map_err(|e| bad(&e.to_string()))?;
        participants.insert(node, keys);
    }
    Ok(ClusterKey {
        threshold,
        key_share,
        group_public_key,
        verification_shares,
        transcript,
        participants,
    })
}

impl NodeSecrets {
    /// New secrets for node `id`: fresh identity and MAC keys, no key share yet.
    pub fn generate<R: CryptoRng + ?Sized>(id: NodeId, rng: &mut R) -> NodeSecrets {
        NodeSecrets {
            keys: NodeKeys::generate(id, rng),
            mac_key: MacKey::generate(rng),
            cluster: None,
            prepared: None,
        }
    }

    /// The length of [`NodeSecrets::encode`]'s output, computed before any secret is copied.
    fn encoded_len(&self) -> usize {
        // version, node id, identity keys, MAC key, key flag, prepared flag
        let base = 1 + 1 + 64 + 32 + 1 + 1;
        base + self.cluster.as_ref().map_or(0, key_len)
            + self
                .prepared
                .as_ref()
                .map_or(0, |p| 2 + p.label.len() + key_len(&p.key))
    }

    /// The plaintext of the secrets file. The buffer is sized exactly before the first
    /// secret goes in and never grows, so no reallocation leaves a copy of a secret behind;
    /// it is zeroized on drop.
    fn encode(&self) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let mut out = ExactBuf::new(self.encoded_len());
        out.put(&[VERSION, self.keys.id().get()]);
        out.put(self.keys.to_secret_bytes().as_ref());
        out.put(self.mac_key.as_bytes());
        match &self.cluster {
            None => out.put(&[0]),
            Some(c) => {
                out.put(&[1]);
                put_key(&mut out, c)?;
            }
        }
        match &self.prepared {
            None => out.put(&[0]),
            Some(p) => {
                let len = u16::try_from(p.label.len()).map_err(|_| SecretsError::Malformed {
                    path: PathBuf::new(),
                    reason: "a resharing label over 65535 bytes".into(),
                })?;
                out.put(&[1]);
                out.put(&len.to_be_bytes());
                out.put(&p.label);
                put_key(&mut out, &p.key)?;
            }
        }
        out.finish()
    }

    fn decode(bytes: &[u8], path: &Path) -> Result<NodeSecrets, SecretsError> {
        let bad = |reason: &str| SecretsError::Malformed {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let mut r = Cursor { bytes, at: 0 };
        let version = r.u8().ok_or_else(|| bad("empty"))?;
        if version != 1 && version != VERSION {
            return Err(bad("unknown version"));
        }
        let id =
            NodeId::new(r.u8().ok_or_else(|| bad("no node id"))?).map_err(|_| bad("node id 0"))?;
        let keys_bytes: [u8; 64] = r.array().ok_or_else(|| bad("truncated keys"))?;
        let keys = NodeKeys::from_secret_bytes(id, &keys_bytes).map_err(|e| bad(&e.to_string()))?;
        let mac: [u8; 32] = r.array().ok_or_else(|| bad("truncated MAC key"))?;
        let mac_key = MacKey::from_bytes(mac);
        let cluster = match r.u8().ok_or_else(|| bad("truncated"))? {
            0 => None,
            1 => Some(read_key(&mut r, id, &bad)?),
            _ => return Err(bad("bad key flag")),
        };
        // Version 1 files (before two-phase resharing) end here.
        let prepared = if version == 1 {
            None
        } else {
            match r.u8().ok_or_else(|| bad("truncated"))? {
                0 => None,
                1 => {
                    let len: [u8; 2] = r.array().ok_or_else(|| bad("truncated label"))?;
                    let len = usize::from(u16::from_be_bytes(len));
                    let label = r
                        .bytes
                        .get(r.at..r.at + len)
                        .ok_or_else(|| bad("truncated label"))?
                        .to_vec();
                    r.at += len;
                    let key = read_key(&mut r, id, &bad)?;
                    Some(PreparedKey { label, key })
                }
                _ => return Err(bad("bad prepared flag")),
            }
        };
        if r.at != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(NodeSecrets {
            keys,
            mac_key,
            cluster,
            prepared,
        })
    }

    /// Seals the secrets into `dir`'s secrets file (atomically, synced).
    ///
    /// # Errors
    /// [`SecretsError::Io`].
    pub fn save<R: CryptoRng + ?Sized>(
        &self,
        dir: &Path,
        key: &AtRestKey,
        rng: &mut R,
    ) -> Result<(), SecretsError> {
        let path = secrets_path(dir);
        let io = |source| SecretsError::Io {
            path: path.clone(),
            source,
        };
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let plain = self.encode()?;
        let sealed = cipher(key)
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(self.keys.id()),
                },
            )
            .map_err(|_| SecretsError::Key("encryption failed".into()))?;
        let mut file = Vec::with_capacity(MAGIC.len() + nonce.len() + sealed.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&nonce);
        file.extend_from_slice(&sealed);
        crate::files::write_secret(&path, &file).map_err(io)?;
        Ok(())
    }

    /// Opens `dir`'s secrets file for node `id`; `Ok(None)` if there is none yet.
    ///
    /// # Errors
    /// [`SecretsError::Unauthentic`] for a wrong key, another node's file or a changed file;
    /// [`SecretsError::Malformed`], [`SecretsError::Io`].
    pub fn open(
        dir: &Path,
        id: NodeId,
        key: &AtRestKey,
    ) -> Result<Option<NodeSecrets>, SecretsError> {
        let path = secrets_path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SecretsError::Io { path, source }),
        };
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| SecretsError::Malformed {
                path: path.clone(),
                reason: "not a secrets file".into(),
            })?;
        let (nonce, sealed) = body
            .split_at_checked(12)
            .ok_or_else(|| SecretsError::Malformed {
                path: path.clone(),
                reason: "truncated".into(),
            })?;
        let plain = Zeroizing::new(
            cipher(key)
                .decrypt(
                    aes_gcm::Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad(id),
                    },
                )
                .map_err(|_| SecretsError::Unauthentic(path.clone()))?,
        );
        NodeSecrets::decode(&plain, &path).map(Some)
    }
}

/// A count of list entries as its one byte.
fn count(len: usize) -> Result<u8, SecretsError> {
    u8::try_from(len)
        .map_err(|_| SecretsError::Key(format!("{len} entries do not fit the secrets file")))
}

/// A zeroized buffer of a fixed capacity that refuses to grow: a write past the capacity
/// is dropped and makes [`ExactBuf::finish`] fail, so the buffer is never reallocated.
struct ExactBuf {
    buf: Zeroizing<Vec<u8>>,
    overflow: bool,
}

impl ExactBuf {
    fn new(len: usize) -> ExactBuf {
        ExactBuf {
            buf: Zeroizing::new(Vec::with_capacity(len)),
            overflow: false,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.buf.capacity() - self.buf.len() < bytes.len() {
            self.overflow = true;
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The bytes, if they filled the capacity exactly.
    fn finish(self) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        if self.overflow || self.buf.len() != self.buf.capacity() {
            return Err(SecretsError::Key(
                "the secrets' encoded length was miscomputed".into(),
            ));
        }
        Ok(self.buf)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        s.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_refuse_a_wrong_key_or_node() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let mut rng = rand::rng();
        let id = NodeId::new(2)?;
        let key = AtRestKey::generate(&mut rng);
        let secrets = NodeSecrets::generate(id, &mut rng);
        secrets.save(dir.path(), &key, &mut rng)?;
        let back = NodeSecrets::open(dir.path(), id, &key)?.ok_or("missing")?;
        assert_eq!(back.keys.public(), secrets.keys.public());
        assert_eq!(back.mac_key.as_bytes(), secrets.mac_key.as_bytes());
        let other = AtRestKey::generate(&mut rng);
        assert!(matches!(
            NodeSecrets::open(dir.path(), id, &other),
            Err(SecretsError::Unauthentic(_))
        ));
        assert!(matches!(
            NodeSecrets::open(dir.path(), NodeId::new(3)?, &key),
            Err(SecretsError::Unauthentic(_))
        ));
        let mut bytes = std::fs::read(secrets_path(dir.path()))?;
        if let Some(b) = bytes.last_mut() {
            *b ^= 1;
        }
        std::fs::write(secrets_path(dir.path()), &bytes)?;
        assert!(NodeSecrets::open(dir.path(), id, &key).is_err());
        Ok(())
    }

    /// Secrets with a key state of `n` nodes (every list filled).
    fn keyed(n: u8) -> Result<NodeSecrets, Box<dyn std::error::Error>> {
        let mut rng = rand::rng();
        let id = NodeId::new(1)?;
        let mut secrets = NodeSecrets::generate(id, &mut rng);
        let point = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
        let mut verification_shares = BTreeMap::new();
        let mut participants = BTreeMap::new();
        for i in 1..=n {
            let node = NodeId::new(i)?;
            verification_shares.insert(node, point);
            participants.insert(node, NodeKeys::generate(node, &mut rng).public());
        }
        secrets.cluster = Some(ClusterKey {
            threshold: Threshold::new(2, n)?,
            key_share: KeyShare::from_bytes(id, &[1u8; 32])?,
            group_public_key: point,
            verification_shares,
            transcript: [7u8; 32],
            participants,
        });
        Ok(secrets)
    }

    #[test]
    fn the_encoding_buffer_is_sized_exactly_and_never_grows()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut rng = rand::rng();
        let plain = NodeSecrets::generate(NodeId::new(4)?, &mut rng);
        let mut prepared = keyed(5)?;
        let mut next = keyed(5)?.cluster.ok_or("no key")?;
        next.transcript = [9u8; 32];
        prepared.prepared = Some(PreparedKey {
            label: b"replace-2".to_vec(),
            key: next,
        });
        for secrets in [plain, keyed(3)?, keyed(255)?, prepared] {
            let expected = secrets.encoded_len();
            let out = secrets.encode()?;
            // The capacity set before the first secret went in is the final length: no
            // write reallocated the buffer.
            assert_eq!(out.capacity(), expected);
            assert_eq!(out.len(), expected);
            let back = NodeSecrets::decode(&out, Path::new("test"))?;
            assert_eq!(back.cluster.is_some(), secrets.cluster.is_some());
            assert_eq!(
                back.prepared
                    .as_ref()
                    .map(|p| (p.label.clone(), p.key.transcript)),
                secrets
                    .prepared
                    .as_ref()
                    .map(|p| (p.label.clone(), p.key.transcript))
            );
        }
        // A version-1 file (no prepared slot) still opens.
        let v2 = keyed(3)?.encode()?;
        let mut v1 = v2[..v2.len() - 1].to_vec();
        v1[0] = 1;
        assert!(NodeSecrets::decode(&v1, Path::new("v1"))?.cluster.is_some());
        // A write past the capacity is refused, never grown into.
        let mut buf = ExactBuf::new(4);
        let capacity = buf.buf.capacity();
        buf.put(&[1, 2, 3]);
        buf.put(&[4, 5]);
        assert_eq!(buf.buf.capacity(), capacity);
        assert_eq!(buf.buf.len(), 3);
        assert!(buf.finish().is_err());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn the_secrets_file_is_0600() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let mut rng = rand::rng();
        let key = AtRestKey::generate(&mut rng);
        keyed(5)?.save(dir.path(), &key, &mut rng)?;
        let mode = std::fs::metadata(secrets_path(dir.path()))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(NodeSecrets::open(dir.path(), NodeId::new(1)?, &key)?.is_some());
        Ok(())
    }

    #[test]
    fn at_rest_key_parses_only_64_hex_digits() {
        assert!(AtRestKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(AtRestKey::from_hex("abc").is_err());
        assert!(AtRestKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
