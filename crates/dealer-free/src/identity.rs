//! A node's long-term identity: a Schnorr signing key and a Diffie–Hellman encryption key,
//! both over ristretto255, and what they are used for.
//!
//! * **Signatures** ([`SigningKey::sign`], [`VerifyingKey::verify`],
//!   [`verify_batch_vartime`]) are Schnorr signatures in the Ed25519 style on ristretto255:
//!   `R = k·G`, `c = H(domain ‖ R ‖ A ‖ msg)`, `s = k + c·a`, valid iff `s·G = R + c·A`. The
//!   nonce `k` is derived from the key, the message and 32 bytes of caller randomness
//!   (hedged: neither a bad RNG nor a fault attack on a deterministic nonce alone leaks the
//!   key). Every protocol message is signed by its sender over a domain-separated encoding
//!   that includes the protocol session id, so a signature from one session or message kind
//!   is worthless in another. Many signatures verify at once with one multiscalar
//!   multiplication (random 128-bit weights); on failure the culprits are found one by one.
//! * **Pairwise encryption** ([`NodeKeys::seal`], [`NodeKeys::open`]) of private shares:
//!   static–static Diffie–Hellman between the sender's and the recipient's encryption keys,
//!   the shared point hashed with the session id, both node ids and a caller label into an
//!   AES-256-GCM key used for exactly one message (so the all-zero nonce is safe), with the
//!   caller's associated data bound in. Only the two nodes can read it, and the recipient
//!   knows it came from the sender: any untrusted party can relay it.
//!
//! Secret keys are zeroized on drop and print as `<redacted>`.
//!
//! # References
//! * C. P. Schnorr, "Efficient Signature Generation by Smart Cards", J. Cryptology 1991.
//! * D. J. Bernstein et al., "High-speed high-security signatures" (Ed25519), 2011.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use phr_sis::NodeId;
use rand::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::wire::{Reader, WireError, Writer};

/// Bytes of an encoded [`Signature`].
pub const SIGNATURE_LEN: usize = 64;
/// AES-GCM tag bytes added by [`NodeKeys::seal`].
pub const SEAL_OVERHEAD: usize = 16;

const SIGNATURE_DOMAIN: &[u8] = b"dealer-free-sis/v1/schnorr-ristretto255-sha512";
const NONCE_DOMAIN: &[u8] = b"dealer-free-sis/v1/schnorr-nonce";
const SEAL_DOMAIN: &[u8] = b"dealer-free-sis/v1/pairwise-aes-256-gcm";

/// A uniformly random scalar (64 random bytes reduced mod ℓ).
pub(crate) fn random_scalar<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    let s = Scalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    s
}

/// A random non-zero scalar.
pub(crate) fn random_nonzero_scalar<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let s = random_scalar(rng);
        if s != Scalar::ZERO {
            return s;
        }
    }
}

/// A random 128-bit scalar, for batch-verification weights.
pub(crate) fn random_weight<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes[..16]);
    Scalar::from_bytes_mod_order(bytes)
}

/// SHA-512 of the parts, reduced mod ℓ.
pub(crate) fn hash_to_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A Schnorr signature `(R, s)`: 32 + 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    r: [u8; 32],
    s: Scalar,
}

impl Signature {
    /// An all-zero signature that verifies under no key (a stand-in where none is needed).
    pub(crate) fn placeholder() -> Signature {
        Signature {
            r: [0; 32],
            s: Scalar::ZERO,
        }
    }

    /// `R ‖ s`.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        let (r, s) = out.split_at_mut(32);
        r.copy_from_slice(&self.r);
        s.copy_from_slice(self.s.as_bytes());
        out
    }

    /// Decodes `R ‖ s` (`None` if `s` is not canonical; `R` is checked at verification).
    #[must_use]
    pub fn from_bytes(bytes: &[u8; SIGNATURE_LEN]) -> Option<Signature> {
        let (r, s) = bytes.split_first_chunk::<32>()?;
        let s: [u8; 32] = s.try_into().ok()?;
        Option::<Scalar>::from(Scalar::from_canonical_bytes(s)).map(|s| Signature { r: *r, s })
    }

    /// Writes the signature.
    pub fn write(&self, w: &mut Writer) {
        w.bytes(&self.to_bytes());
    }

    /// Reads a signature (`s` must be canonical; `R` is checked at verification).
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::InvalidScalar`].
    pub fn read(r: &mut Reader<'_>) -> Result<Signature, WireError> {
        let rb = r.array::<32>("signature R")?;
        let s = r.scalar("signature s")?;
        Ok(Signature { r: rb, s })
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({:02x?}…)",
            self.r.get(..4).unwrap_or_default()
        )
    }
}

/// A public signature-verification key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifyingKey {
    point: RistrettoPoint,
    bytes: [u8; 32],
}

impl VerifyingKey {
    /// The key for a point (not the identity).
    ///
    /// # Errors
    /// [`WireError::InvalidPoint`] for the identity.
    pub fn from_point(point: RistrettoPoint) -> Result<VerifyingKey, WireError> {
        if point.is_identity() {
            return Err(WireError::InvalidPoint {
                field: "verifying key",
            });
        }
        Ok(VerifyingKey {
            point,
            bytes: point.compress().to_bytes(),
        })
    }

    /// A key from a point and its compressed encoding, as decoded together (no second
    /// compression); `None` for the identity.
    pub(crate) fn from_decoded(point: RistrettoPoint, bytes: [u8; 32]) -> Option<VerifyingKey> {
        (!point.is_identity()).then_some(VerifyingKey { point, bytes })
    }

    /// Decodes a compressed key.
    ///
    /// # Errors
    /// [`WireError::InvalidPoint`] for a non-canonical encoding or the identity.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, WireError> {
        let point = crate::wire::decode_point(bytes).ok_or(WireError::InvalidPoint {
            field: "verifying key",
        })?;
        Ok(VerifyingKey {
            point,
            bytes: *bytes,
        })
    }

    /// The compressed key.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    fn challenge(&self, r: &[u8; 32], msg: &[u8]) -> Scalar {
        hash_to_scalar(&[SIGNATURE_DOMAIN, r, &self.bytes, msg])
    }

    /// Whether `sig` is this key's signature on `msg`. Variable time (public data).
    #[must_use]
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        let Some(r) = crate::wire::decode_point(&sig.r) else {
            return false;
        };
        let c = self.challenge(&sig.r, msg);
        // s·G − c·A − R == 0
        RistrettoPoint::vartime_multiscalar_mul(
            [sig.s, -c, -Scalar::ONE],
            [RISTRETTO_BASEPOINT_POINT, self.point, r],
        )
        .is_identity()
    }
}

/// A secret signing key. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey {
    secret: Scalar,
    #[zeroize(skip)]
    public: VerifyingKey,
}

impl SigningKey {
    /// A fresh random key.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> SigningKey {
        SigningKey::from_scalar(random_nonzero_scalar(rng))
    }

    pub(crate) fn from_scalar(secret: Scalar) -> SigningKey {
        let point = RistrettoPoint::mul_base(&secret);
        SigningKey {
            secret,
            public: VerifyingKey {
                point,
                bytes: point.compress().to_bytes(),
            },
        }
    }

    /// The matching public key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// Signs `msg`; the nonce mixes the key, the message and fresh randomness.
    pub fn sign<R: CryptoRng + ?Sized>(&self, msg: &[u8], rng: &mut R) -> Signature {
        let mut fresh = [0u8; 32];
        rng.fill_bytes(&mut fresh);
        let mut k = hash_to_scalar(&[NONCE_DOMAIN, self.secret.as_bytes(), &fresh, msg]);
        let r = RistrettoPoint::mul_base(&k).compress().to_bytes();
        let c = self.public.challenge(&r, msg);
        let s = k + c * self.secret;
        k.zeroize();
        Signature { r, s }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Verifies many `(key, message, signature)` triples with one multiscalar multiplication.
/// Variable time (public data).
///
/// # Errors
/// The indices of every triple that fails on its own.
pub fn verify_batch_vartime<R: CryptoRng + ?Sized>(
    items: &[(&VerifyingKey, &[u8], &Signature)],
    rng: &mut R,
) -> Result<(), Vec<usize>> {
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    let mut g = Scalar::ZERO;
    let mut decoded = true;
    for (key, msg, sig) in items {
        let Some(r) = crate::wire::decode_point(&sig.r) else {
            decoded = false;
            break;
        };
        let z = random_weight(rng);
        let c = key.challenge(&sig.r, msg);
        g += z * sig.s;
        scalars.push(-z * c);
        points.push(key.point);
        scalars.push(-z);
        points.push(r);
    }
    if decoded {
        scalars.push(g);
        points.push(RISTRETTO_BASEPOINT_POINT);
        if RistrettoPoint::vartime_multiscalar_mul(&scalars, &points).is_identity() {
            return Ok(());
        }
    }
    let failing: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, (key, msg, sig))| !key.verify(msg, sig))
        .map(|(i, _)| i)
        .collect();
    if failing.is_empty() {
        Ok(())
    } else {
        Err(failing)
    }
}

/// The indices of the entries that fail: no key, no signature, or a signature that does not
/// verify — all checked with one [`verify_batch_vartime`].
pub fn failing_signatures<R: CryptoRng + ?Sized>(
    entries: &[(Option<&VerifyingKey>, &[u8], Option<&Signature>)],
    rng: &mut R,
) -> std::collections::BTreeSet<usize> {
    let mut items = Vec::with_capacity(entries.len());
    let mut index = Vec::with_capacity(entries.len());
    let mut failing = std::collections::BTreeSet::new();
    for (i, (key, msg, sig)) in entries.iter().enumerate() {
        match (key, sig) {
            (Some(key), Some(sig)) => {
                items.push((*key, *msg, *sig));
                index.push(i);
            }
            _ => {
                failing.insert(i);
            }
        }
    }
    if let Err(bad) = verify_batch_vartime(&items, rng) {
        failing.extend(bad.into_iter().filter_map(|b| index.get(b).copied()));
    }
    failing
}

/// A node's public identity: what every other node must know about it in advance.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NodePublicKeys {
    /// Verifies the node's signatures.
    pub signing: VerifyingKey,
    /// The node's Diffie–Hellman key for pairwise encryption.
    pub encryption: RistrettoPoint,
}

impl NodePublicKeys {
    /// `signing ‖ encryption`, 64 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let (a, b) = out.split_at_mut(32);
        a.copy_from_slice(&self.signing.to_bytes());
        b.copy_from_slice(self.encryption.compress().as_bytes());
        out
    }

    /// Decodes `signing ‖ encryption`.
    ///
    /// # Errors
    /// [`WireError::InvalidPoint`] for a non-canonical key or the identity.
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<NodePublicKeys, WireError> {
        let (a, b) = bytes.split_at(32);
        let mut sa = [0u8; 32];
        sa.copy_from_slice(a);
        let mut sb = [0u8; 32];
        sb.copy_from_slice(b);
        Ok(NodePublicKeys {
            signing: VerifyingKey::from_bytes(&sa)?,
            encryption: crate::wire::decode_point(&sb).ok_or(WireError::InvalidPoint {
                field: "encryption key",
            })?,
        })
    }
}

/// A peer's encryption key and the Diffie–Hellman secret shared with it.
type SharedSecret = (RistrettoPoint, zeroize::Zeroizing<[u8; 32]>);

/// A node's long-term secret keys. Zeroized on drop; `Debug` is redacted.
///
/// The static–static Diffie–Hellman point with each peer is computed once and kept (a
/// constant-time scalar multiplication per peer, not per message); the kept secrets are
/// zeroized when the keys are dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct NodeKeys {
    #[zeroize(skip)]
    id: NodeId,
    signing: SigningKey,
    encryption: Scalar,
    #[zeroize(skip)]
    shared: Mutex<HashMap<NodeId, SharedSecret>>,
}

impl Clone for NodeKeys {
    fn clone(&self) -> NodeKeys {
        NodeKeys {
            id: self.id,
            signing: self.signing.clone(),
            encryption: self.encryption,
            shared: Mutex::default(),
        }
    }
}

/// Why a sealed message could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The ciphertext, its tag or the associated data were altered, or it was sealed for
    /// another node, session or label.
    #[error("ciphertext does not authenticate")]
    Unauthentic,
}

impl NodeKeys {
    /// Fresh random keys for node `id`.
    pub fn generate<R: CryptoRng + ?Sized>(id: NodeId, rng: &mut R) -> NodeKeys {
        NodeKeys {
            id,
            signing: SigningKey::random(rng),
            encryption: random_nonzero_scalar(rng),
            shared: Mutex::default(),
        }
    }

    /// Keys from their 64-byte secret encoding `signing ‖ encryption` (as kept at rest).
    ///
    /// # Errors
    /// [`WireError::InvalidScalar`] for a non-canonical or zero scalar.
    pub fn from_secret_bytes(id: NodeId, bytes: &[u8; 64]) -> Result<NodeKeys, WireError> {
        let (a, b) = bytes.split_at(32);
        let scalar = |half: &[u8], field: &'static str| {
            let mut s = [0u8; 32];
            s.copy_from_slice(half);
            let v: Option<Scalar> = Scalar::from_canonical_bytes(s).into();
            s.zeroize();
            v.filter(|v| *v != Scalar::ZERO)
                .ok_or(WireError::InvalidScalar { field })
        };
        Ok(NodeKeys {
            id,
            signing: SigningKey::from_scalar(scalar(a, "signing key")?),
            encryption: scalar(b, "encryption key")?,
            shared: Mutex::default(),
        })
    }

    /// The 64-byte secret encoding (for storage encrypted at rest). Zeroize it after use.
    #[must_use]
    pub fn to_secret_bytes(&self) -> zeroize::Zeroizing<[u8; 64]> {
        let mut out = zeroize::Zeroizing::new([0u8; 64]);
        let (a, b) = out.split_at_mut(32);
        a.copy_from_slice(self.signing.secret.as_bytes());
        b.copy_from_slice(self.encryption.as_bytes());
        out
    }

    /// The node these keys belong to.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The public half.
    #[must_use]
    pub fn public(&self) -> NodePublicKeys {
        NodePublicKeys {
            signing: self.signing.verifying_key(),
            encryption: RistrettoPoint::mul_base(&self.encryption),
        }
    }

    /// Signs `msg`.
    pub fn sign<R: CryptoRng + ?Sized>(&self, msg: &[u8], rng: &mut R) -> Signature {
        self.signing.sign(msg, rng)
    }

    /// `encryption · point`: the Diffie–Hellman point with a dealer's ephemeral key
    /// ([`crate::dkg::sealed`]).
    pub(crate) fn exchange(&self, point: &RistrettoPoint) -> RistrettoPoint {
        self.encryption * point
    }

    /// A Chaum–Pedersen proof that `shared = encryption · base` for this node's encryption key
    /// (`encryption · G` is its public key), bound to `context`.
    pub(crate) fn prove_exchange<R: CryptoRng + ?Sized>(
        &self,
        base: &RistrettoPoint,
        shared: &RistrettoPoint,
        context: &[u8],
        rng: &mut R,
    ) -> crate::dkg::sealed::ExchangeProof {
        crate::dkg::sealed::ExchangeProof::prove(&self.encryption, base, shared, context, rng)
    }

    /// `encryption · peer_key`, compressed; computed once per peer (kept by node id, and
    /// recomputed if that node's key is not the one kept).
    fn shared_secret(
        &self,
        peer: NodeId,
        peer_key: &RistrettoPoint,
    ) -> zeroize::Zeroizing<[u8; 32]> {
        if let Ok(cache) = self.shared.lock()
            && let Some((key, s)) = cache.get(&peer)
            && key == peer_key
        {
            return s.clone();
        }
        let s = zeroize::Zeroizing::new((self.encryption * peer_key).compress().to_bytes());
        if let Ok(mut cache) = self.shared.lock() {
            cache.insert(peer, (*peer_key, s.clone()));
        }
        s
    }

    #[allow(clippy::too_many_arguments)]
    fn pairwise_cipher(
        &self,
        peer: NodeId,
        peer_key: &RistrettoPoint,
        session: &[u8; 32],
        label: &[u8],
        aad: &[u8],
        sender: NodeId,
        recipient: NodeId,
    ) -> Aes256Gcm {
        let shared = self.shared_secret(peer, peer_key);
        let mut digest = Sha512::new()
            .chain_update(SEAL_DOMAIN)
            .chain_update(session)
            .chain_update([sender.get(), recipient.get()])
            .chain_update(u16::try_from(label.len()).unwrap_or(u16::MAX).to_be_bytes())
            .chain_update(label)
            .chain_update((aad.len() as u64).to_be_bytes())
            .chain_update(Sha512::digest(aad))
            .chain_update(shared.as_slice())
            .finalize();
        let cipher = Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(&digest[..32]));
        digest.zeroize();
        cipher
    }

    /// Encrypts `plaintext` for node `to`, binding `aad`. The key is derived from `(session,
    /// label, to, aad)` and the nonce is fixed, so each such tuple must seal one plaintext
    /// only: every caller binds a fresh commitment to the dealt randomness as `aad`, so a
    /// session run again (a repeated label, a retried request) still gets a new key.
    #[must_use]
    pub fn seal(
        &self,
        to: NodeId,
        to_key: &RistrettoPoint,
        session: &[u8; 32],
        label: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let cipher = self.pairwise_cipher(to, to_key, session, label, aad, self.id, to);
        cipher
            .encrypt(
                &aes_gcm::Nonce::default(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default()
    }

    /// Decrypts what node `from` sealed for this node.
    ///
    /// # Errors
    /// [`OpenError::Unauthentic`] if it does not authenticate.
    pub fn open(
        &self,
        from: NodeId,
        from_key: &RistrettoPoint,
        session: &[u8; 32],
        label: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, OpenError> {
        let cipher = self.pairwise_cipher(from, from_key, session, label, aad, from, self.id);
        cipher
            .decrypt(
                &aes_gcm::Nonce::default(),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(zeroize::Zeroizing::new)
            .map_err(|_| OpenError::Unauthentic)
    }
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeys")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn node(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    #[test]
    fn signatures_verify_and_reject() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let keys: Vec<SigningKey> = (0..5).map(|_| SigningKey::random(&mut rng)).collect();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        let sigs: Vec<Signature> = keys
            .iter()
            .zip(&msgs)
            .map(|(k, m)| k.sign(m, &mut rng))
            .collect();
        let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        let mut items: Vec<(&VerifyingKey, &[u8], &Signature)> = vks
            .iter()
            .zip(&msgs)
            .zip(&sigs)
            .map(|((k, m), s)| (k, m.as_slice(), s))
            .collect();
        assert!(items.iter().all(|(k, m, s)| k.verify(m, s)));
        assert_eq!(verify_batch_vartime(&items, &mut rng), Ok(()));
        // Wrong message for entry 2, wrong key for entry 4.
        items[2].1 = b"other";
        items[4].0 = &vks[0];
        assert_eq!(verify_batch_vartime(&items, &mut rng), Err(vec![2, 4]));
        let mut bytes = sigs[0].to_bytes();
        bytes[0] ^= 1;
        let bad = Signature::from_bytes(&bytes).unwrap();
        assert!(!vks[0].verify(&msgs[0], &bad));
        assert_eq!(format!("{:?}", keys[0]), "SigningKey(<redacted>)");
    }

    #[test]
    fn a_session_sealed_again_under_a_new_commitment_gets_a_new_key() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let a = NodeKeys::generate(node(1), &mut rng);
        let b = NodeKeys::generate(node(2), &mut rng);
        let to = b.public().encryption;
        let session = [9u8; 32];
        let (p1, p2) = ([0x11u8; 32], [0x22u8; 32]);
        let c1 = a.seal(node(2), &to, &session, b"share", b"commitment 1", &p1);
        let c2 = a.seal(node(2), &to, &session, b"share", b"commitment 2", &p2);
        // With one key and the fixed nonce, c1 ⊕ c2 would equal p1 ⊕ p2.
        let xc: Vec<u8> = c1.iter().zip(&c2).take(32).map(|(x, y)| x ^ y).collect();
        let xp: Vec<u8> = p1.iter().zip(&p2).map(|(x, y)| x ^ y).collect();
        assert_ne!(xc, xp);
    }

    #[test]
    fn sealed_shares_open_only_for_the_recipient() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let a = NodeKeys::generate(node(1), &mut rng);
        let b = NodeKeys::generate(node(2), &mut rng);
        let c = NodeKeys::generate(node(3), &mut rng);
        let session = [7u8; 32];
        let ct = a.seal(
            node(2),
            &b.public().encryption,
            &session,
            b"x",
            b"aad",
            b"secret",
        );
        assert_eq!(ct.len(), 6 + SEAL_OVERHEAD);
        let pt = b
            .open(node(1), &a.public().encryption, &session, b"x", b"aad", &ct)
            .unwrap();
        assert_eq!(pt.as_slice(), b"secret");
        assert!(
            c.open(node(1), &a.public().encryption, &session, b"x", b"aad", &ct)
                .is_err()
        );
        assert!(
            b.open(
                node(1),
                &a.public().encryption,
                &[8u8; 32],
                b"x",
                b"aad",
                &ct
            )
            .is_err()
        );
        assert!(
            b.open(node(1), &a.public().encryption, &session, b"x", b"aa", &ct)
                .is_err()
        );
        let restored = NodeKeys::from_secret_bytes(node(1), &a.to_secret_bytes()).unwrap();
        assert_eq!(restored.public(), a.public());
        assert_eq!(
            NodePublicKeys::from_bytes(&a.public().to_bytes()).unwrap(),
            a.public()
        );
    }
}
