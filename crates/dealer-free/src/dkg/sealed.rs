//! Private shares sealed under a dealer's per-session ephemeral key, and the proof with which
//! a recipient shows everyone that its sealed share is bad — without any honest share ever
//! becoming public.
//!
//! A dealer draws a fresh ephemeral key `e` per session and publishes `E = e·G` inside its
//! signed deal. The share for recipient `j` (public encryption key `P_j = p_j·G`) is sealed
//! with AES-256-GCM under a key derived from `K_j = e·P_j = p_j·E`, the session, both node
//! ids, `E` and a label, with the dealer's commitment digest as associated data; each key
//! seals exactly one plaintext, so the fixed nonce is safe. The dealer signs every
//! recipient's ciphertext (with the session and the dealer), so a relay can neither forge nor swap one.
//!
//! **Complaints with evidence.** A recipient whose share does not open or does not match the
//! commitment publishes [`ShareEvidence`]: the signed ciphertext, `K_j` and a Chaum–Pedersen
//! proof ([`ExchangeProof`]) that `log_G P_j = log_E K_j`. Anyone can then derive the one
//! AES key, open that one ciphertext and judge: a bad share disqualifies the dealer (whose
//! polynomial then no longer matters); a good one shows the complaint false — and the only
//! share it made public is the false accuser's own. Because `E` is fresh per session, `K_j`
//! opens nothing else: no other ciphertext of this session and nothing of any other
//! session, and `p_j` stays secret (the proof is zero-knowledge).

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use phr_sis::NodeId;
use rand::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};

use crate::identity::{
    NodeKeys, SEAL_OVERHEAD, Signature, VerifyingKey, hash_to_scalar, random_nonzero_scalar,
};
use crate::wire::{Reader, WireError, Writer};

const KEY_DOMAIN: &[u8] = b"dealer-free-sis/v1/ephemeral-aes-256-gcm";
const PROOF_DOMAIN: &[u8] = b"dealer-free-sis/v1/exchange-proof";
const DEAL_SIGNATURE_DOMAIN: &[u8] = b"dealer-free-sis/v1/signed-deal";
const POSSESSION_DOMAIN: &[u8] = b"dealer-free-sis/v1/ephemeral-key-possession";

/// A dealer's ephemeral key `E = e·G` with its proof of possession: a Schnorr signature under
/// `e` over the session, the protocol label and the dealer. Without the proof a corrupt
/// dealer could put an honest dealer's `E_h` (or a multiple of it, or a node's long-term
/// key) into its own deal and have the recipient's complaint publish `p_j·E_h`, which opens
/// `h`'s share to `j`; with it, `E` is provably the dealer's own, fresh for this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ephemeral {
    /// `E = e·G`.
    pub point: RistrettoPoint,
    /// The proof of possession of `e`.
    pub proof: Signature,
    /// `E` compressed (kept, so that it is encoded once).
    encoded: [u8; 32],
}

/// Bytes of an encoded [`Ephemeral`].
pub const EPHEMERAL_LEN: usize = 32 + crate::identity::SIGNATURE_LEN;

impl Ephemeral {
    /// An ephemeral key and its proof (check it with [`Ephemeral::verify`]).
    #[must_use]
    pub fn new(point: RistrettoPoint, proof: Signature) -> Ephemeral {
        Ephemeral {
            point,
            proof,
            encoded: point.compress().to_bytes(),
        }
    }

    /// `E` compressed.
    #[must_use]
    pub fn bytes(&self) -> [u8; 32] {
        self.encoded
    }

    fn possession_bytes(session: &[u8; 32], label: &[u8], dealer: NodeId) -> Vec<u8> {
        let mut v = Vec::with_capacity(POSSESSION_DOMAIN.len() + 33 + 2 + label.len());
        v.extend_from_slice(POSSESSION_DOMAIN);
        v.extend_from_slice(session);
        v.extend_from_slice(&u16::try_from(label.len()).unwrap_or(u16::MAX).to_be_bytes());
        v.extend_from_slice(label);
        v.push(dealer.get());
        v
    }

    /// Whether the proof holds for `dealer` in this session and protocol.
    #[must_use]
    pub fn verify(&self, session: &[u8; 32], label: &[u8], dealer: NodeId) -> bool {
        VerifyingKey::from_decoded(self.point, self.encoded).is_some_and(|k| {
            k.verify(
                &Ephemeral::possession_bytes(session, label, dealer),
                &self.proof,
            )
        })
    }

    /// `(key, message, proof)` for a batch check ([`crate::identity::failing_signatures`]).
    pub(crate) fn claim(
        &self,
        session: &[u8; 32],
        label: &[u8],
        dealer: NodeId,
    ) -> (Option<VerifyingKey>, Vec<u8>) {
        (
            VerifyingKey::from_decoded(self.point, self.encoded),
            Ephemeral::possession_bytes(session, label, dealer),
        )
    }

    /// `E ‖ proof`.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; EPHEMERAL_LEN] {
        let mut out = [0u8; EPHEMERAL_LEN];
        out[..32].copy_from_slice(&self.encoded);
        out[32..].copy_from_slice(&self.proof.to_bytes());
        out
    }

    /// Reads `E ‖ proof` (the proof is checked separately).
    ///
    /// # Errors
    /// [`WireError`] for a bad point or a non-canonical scalar.
    pub fn read(r: &mut Reader<'_>) -> Result<Ephemeral, WireError> {
        let encoded = r.array::<32>("ephemeral key")?;
        let point = crate::wire::decode_point(&encoded).ok_or(WireError::InvalidPoint {
            field: "ephemeral key",
        })?;
        Ok(Ephemeral {
            point,
            proof: Signature::read(r)?,
            encoded,
        })
    }
}

/// A dealer's per-session ephemeral key. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct EphemeralKey {
    secret: Scalar,
    #[zeroize(skip)]
    public: RistrettoPoint,
    #[zeroize(skip)]
    public_bytes: [u8; 32],
}

/// What the key derivation takes of exchange points `K`: `compress(2·K)` (a bijection of the
/// prime-order group), so that many are encoded with one field inversion.
pub(crate) fn exchange_bytes(points: &[RistrettoPoint]) -> Zeroizing<Vec<[u8; 32]>> {
    Zeroizing::new(
        RistrettoPoint::double_and_compress_batch(points)
            .into_iter()
            .map(|c| c.to_bytes())
            .collect(),
    )
}

impl EphemeralKey {
    /// A fresh key.
    pub(crate) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> EphemeralKey {
        let secret = random_nonzero_scalar(rng);
        let public = RistrettoPoint::mul_base(&secret);
        EphemeralKey {
            secret,
            public,
            public_bytes: public.compress().to_bytes(),
        }
    }

    /// `E = e·G`.
    #[cfg(test)]
    pub(crate) fn public(&self) -> RistrettoPoint {
        self.public
    }

    /// `E` with its proof of possession for `dealer` in this session and protocol.
    pub(crate) fn announce<R: CryptoRng + ?Sized>(
        &self,
        session: &[u8; 32],
        label: &[u8],
        dealer: NodeId,
        rng: &mut R,
    ) -> Ephemeral {
        let key = crate::identity::SigningKey::from_scalar(self.secret);
        Ephemeral {
            point: self.public,
            proof: key.sign(&Ephemeral::possession_bytes(session, label, dealer), rng),
            encoded: self.public_bytes,
        }
    }

    /// Seals `plain` for `recipient` (public encryption key `to_key`).
    pub(crate) fn seal(
        &self,
        ctx: &SealContext<'_>,
        to_key: &RistrettoPoint,
        plain: &[u8],
    ) -> Vec<u8> {
        let exchange = self.exchanges(std::slice::from_ref(to_key));
        self.seal_prepared(ctx, exchange.first().unwrap_or(&[0; 32]), plain)
    }

    /// The key-derivation encodings of `e·P` for every recipient key `P` (one inversion).
    pub(crate) fn exchanges(&self, to_keys: &[RistrettoPoint]) -> Zeroizing<Vec<[u8; 32]>> {
        let mut points: Vec<RistrettoPoint> = to_keys.iter().map(|p| self.secret * p).collect();
        let out = exchange_bytes(&points);
        points.zeroize();
        out
    }

    /// Seals `plain` with a precomputed exchange encoding ([`EphemeralKey::exchanges`]).
    pub(crate) fn seal_prepared(
        &self,
        ctx: &SealContext<'_>,
        exchange: &[u8; 32],
        plain: &[u8],
    ) -> Vec<u8> {
        let cipher = ctx.cipher(&self.public_bytes, exchange);
        cipher
            .encrypt(
                &aes_gcm::Nonce::default(),
                Payload {
                    msg: plain,
                    aad: ctx.aad,
                },
            )
            .unwrap_or_default()
    }
}

/// What a sealed share is bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealContext<'a> {
    /// The protocol session.
    pub(crate) session: &'a [u8; 32],
    /// The protocol's label (DKG or resharing).
    pub(crate) label: &'static [u8],
    /// The dealer.
    pub(crate) dealer: NodeId,
    /// The recipient.
    pub(crate) recipient: NodeId,
    /// The dealer's commitment digest.
    pub(crate) aad: &'a [u8; 32],
}

impl SealContext<'_> {
    fn cipher(&self, ephemeral: &[u8; 32], exchange: &[u8; 32]) -> Aes256Gcm {
        let mut digest = Sha512::new()
            .chain_update(KEY_DOMAIN)
            .chain_update(self.session)
            .chain_update(
                u16::try_from(self.label.len())
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
            )
            .chain_update(self.label)
            .chain_update([self.dealer.get(), self.recipient.get()])
            .chain_update(ephemeral)
            .chain_update(exchange)
            .finalize();
        let cipher = Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(&digest[..32]));
        digest.zeroize();
        cipher
    }

    /// Opens a ciphertext with the shared point `K = p_j·E`.
    pub(crate) fn open_with(
        &self,
        ephemeral: &RistrettoPoint,
        shared: &RistrettoPoint,
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let exchange = exchange_bytes(std::slice::from_ref(shared));
        self.open_prepared(
            &ephemeral.compress().to_bytes(),
            exchange.first()?,
            ciphertext,
        )
    }

    /// Opens a ciphertext with `E`'s encoding and a precomputed exchange encoding.
    pub(crate) fn open_prepared(
        &self,
        ephemeral: &[u8; 32],
        exchange: &[u8; 32],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        self.cipher(ephemeral, exchange)
            .decrypt(
                &aes_gcm::Nonce::default(),
                Payload {
                    msg: ciphertext,
                    aad: self.aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// Opens a ciphertext as its recipient.
    pub(crate) fn open(
        &self,
        keys: &NodeKeys,
        ephemeral: &RistrettoPoint,
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        self.open_with(ephemeral, &keys.exchange(ephemeral), ciphertext)
    }
}

/// The bytes a dealer signs for one recipient's deal: the session, the dealer, its commitment
/// digest (which covers the commitment and the ephemeral key with its proof), the recipient
/// and the ciphertext. Binding the session means a deal signed in one session is no evidence
/// in another.
pub(crate) fn deal_signed_bytes(
    session: &[u8; 32],
    dealer: NodeId,
    digest: &[u8; 32],
    recipient: NodeId,
    ciphertext: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(DEAL_SIGNATURE_DOMAIN.len() + 66 + ciphertext.len());
    v.extend_from_slice(DEAL_SIGNATURE_DOMAIN);
    v.extend_from_slice(session);
    v.push(dealer.get());
    v.extend_from_slice(digest);
    v.push(recipient.get());
    v.extend_from_slice(ciphertext);
    v
}

/// A proof that `K = x·B` for the `x` with `P = x·G` (Chaum–Pedersen, Fiat–Shamir): `(c, s)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeProof {
    c: Scalar,
    s: Scalar,
}

/// Bytes of an encoded [`ExchangeProof`].
pub const EXCHANGE_PROOF_LEN: usize = 64;

impl ExchangeProof {
    /// A proof from its scalars `(c, s)` (for tests and decoders; check it with
    /// [`ExchangeProof::verify`]).
    #[must_use]
    pub fn from_parts(c: Scalar, s: Scalar) -> ExchangeProof {
        ExchangeProof { c, s }
    }

    fn challenge(
        context: &[u8],
        public: &RistrettoPoint,
        base: &RistrettoPoint,
        shared: &RistrettoPoint,
        a: &RistrettoPoint,
        b: &RistrettoPoint,
    ) -> Scalar {
        hash_to_scalar(&[
            PROOF_DOMAIN,
            &(context.len() as u64).to_be_bytes(),
            context,
            public.compress().as_bytes(),
            base.compress().as_bytes(),
            shared.compress().as_bytes(),
            a.compress().as_bytes(),
            b.compress().as_bytes(),
        ])
    }

    pub(crate) fn prove<R: CryptoRng + ?Sized>(
        x: &Scalar,
        base: &RistrettoPoint,
        shared: &RistrettoPoint,
        context: &[u8],
        rng: &mut R,
    ) -> ExchangeProof {
        let mut k = random_nonzero_scalar(rng);
        let public = RistrettoPoint::mul_base(x);
        let a = RistrettoPoint::mul_base(&k);
        let b = k * base;
        let c = ExchangeProof::challenge(context, &public, base, shared, &a, &b);
        let s = k - c * x;
        k.zeroize();
        ExchangeProof { c, s }
    }

    /// Whether `shared = x·base` where `public = x·G`.
    #[must_use]
    pub fn verify(
        &self,
        public: &RistrettoPoint,
        base: &RistrettoPoint,
        shared: &RistrettoPoint,
        context: &[u8],
    ) -> bool {
        let a = RistrettoPoint::vartime_multiscalar_mul(
            [self.s, self.c],
            [RISTRETTO_BASEPOINT_POINT, *public],
        );
        let b = RistrettoPoint::vartime_multiscalar_mul([self.s, self.c], [*base, *shared]);
        ExchangeProof::challenge(context, public, base, shared, &a, &b) == self.c
    }
}

/// A recipient's public proof that the share a dealer sealed for it is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEvidence {
    /// The ciphertext the dealer signed for the recipient.
    pub ciphertext: Vec<u8>,
    /// The dealer's signature over it (with the session, the dealer, its commitment digest
    /// and the recipient).
    pub signature: Signature,
    /// `K = p_j·E`.
    pub shared: RistrettoPoint,
    /// The proof that `K` is the recipient's exchange with `E`.
    pub proof: ExchangeProof,
}

/// How [`ShareEvidence`] judges the dealer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The evidence does not hold (signature or proof fails): the complaint is void.
    Void,
    /// The share opens and is valid: the complaint is false. Carries the opened plaintext.
    ShareValid(Zeroizing<Vec<u8>>),
    /// The dealer signed a share that does not open or fails its commitment.
    DealerGuilty,
}

impl ShareEvidence {
    /// Builds the evidence of the recipient holding `keys` about a signed ciphertext.
    pub(crate) fn new<R: CryptoRng + ?Sized>(
        keys: &NodeKeys,
        ctx: &SealContext<'_>,
        ephemeral: &RistrettoPoint,
        ciphertext: &[u8],
        signature: Signature,
        rng: &mut R,
    ) -> ShareEvidence {
        let shared = keys.exchange(ephemeral);
        let context = proof_context(ctx);
        let proof = keys.prove_exchange(ephemeral, &shared, &context, rng);
        ShareEvidence {
            ciphertext: ciphertext.to_vec(),
            signature,
            shared,
            proof,
        }
    }

    /// Judges the dealer: `valid_share` says whether an opened plaintext is a share that
    /// matches the dealer's commitment.
    pub(crate) fn judge(
        &self,
        ctx: &SealContext<'_>,
        dealer_key: &VerifyingKey,
        ephemeral: &RistrettoPoint,
        recipient_key: &RistrettoPoint,
        valid_share: impl FnOnce(&[u8]) -> bool,
    ) -> Verdict {
        let signed = deal_signed_bytes(
            ctx.session,
            ctx.dealer,
            ctx.aad,
            ctx.recipient,
            &self.ciphertext,
        );
        if !dealer_key.verify(&signed, &self.signature)
            || !self
                .proof
                .verify(recipient_key, ephemeral, &self.shared, &proof_context(ctx))
        {
            return Verdict::Void;
        }
        match ctx.open_with(ephemeral, &self.shared, &self.ciphertext) {
            Some(plain) if valid_share(&plain) => Verdict::ShareValid(plain),
            _ => Verdict::DealerGuilty,
        }
    }

    /// Appends the encoding: `ciphertext (len) ‖ signature ‖ K ‖ proof`.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.ciphertext);
        self.signature.write(w);
        w.point(&self.shared);
        w.scalar(&self.proof.c);
        w.scalar(&self.proof.s);
    }

    /// Reads evidence about a ciphertext of `ciphertext_len` bytes.
    pub(crate) fn read(
        r: &mut Reader<'_>,
        ciphertext_len: usize,
    ) -> Result<ShareEvidence, WireError> {
        Ok(ShareEvidence {
            ciphertext: r.slice("evidence ciphertext", ciphertext_len)?.to_vec(),
            signature: Signature::read(r)?,
            shared: r.point("evidence exchange point")?,
            proof: ExchangeProof {
                c: r.scalar("evidence proof c")?,
                s: r.scalar("evidence proof s")?,
            },
        })
    }

    /// Bytes of the encoding for a ciphertext of `ciphertext_len` bytes.
    #[must_use]
    pub fn encoded_len(ciphertext_len: usize) -> usize {
        ciphertext_len + crate::identity::SIGNATURE_LEN + 32 + EXCHANGE_PROOF_LEN
    }
}

fn proof_context(ctx: &SealContext<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 + 2 + ctx.label.len() + 32);
    v.extend_from_slice(ctx.session);
    v.extend_from_slice(ctx.label);
    v.extend_from_slice(&[ctx.dealer.get(), ctx.recipient.get()]);
    v.extend_from_slice(ctx.aad);
    v
}

/// Bytes a sealed plaintext of `len` bytes takes.
#[must_use]
pub const fn sealed_len(len: usize) -> usize {
    len + SEAL_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[allow(clippy::unwrap_used)] // test code
    fn node(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    #[test]
    fn evidence_opens_exactly_the_one_share_and_names_a_bad_dealer() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let dealer = NodeKeys::generate(node(1), &mut rng);
        let recipient = NodeKeys::generate(node(2), &mut rng);
        let e = EphemeralKey::generate(&mut rng);
        let session = [9u8; 32];
        let digest = [3u8; 32];
        let ctx = SealContext {
            session: &session,
            label: b"test",
            dealer: node(1),
            recipient: node(2),
            aad: &digest,
        };
        let ct = e.seal(&ctx, &recipient.public().encryption, b"the share");
        assert_eq!(ct.len(), sealed_len(9));
        let opened = ctx.open(&recipient, &e.public(), &ct);
        assert_eq!(
            opened.as_deref().map(Vec::as_slice),
            Some(&b"the share"[..])
        );
        let sig = dealer.sign(
            &deal_signed_bytes(&session, node(1), &digest, node(2), &ct),
            &mut rng,
        );
        // A deal signed in one session is no evidence in another.
        let other_session = [8u8; 32];
        assert!(!dealer.public().signing.verify(
            &deal_signed_bytes(&other_session, node(1), &digest, node(2), &ct),
            &sig
        ));
        // An ephemeral key's proof of possession holds only for its dealer and session.
        let announced = e.announce(&session, b"test", node(1), &mut rng);
        assert!(announced.verify(&session, b"test", node(1)));
        assert!(!announced.verify(&session, b"test", node(2)));
        assert!(!announced.verify(&other_session, b"test", node(1)));
        let ev = ShareEvidence::new(&recipient, &ctx, &e.public(), &ct, sig, &mut rng);
        let pk = recipient.public().encryption;
        let signing = dealer.public().signing;
        // A valid share: the complaint is false.
        assert!(matches!(
            ev.judge(&ctx, &signing, &e.public(), &pk, |p| p == b"the share"),
            Verdict::ShareValid(_)
        ));
        // An invalid one: the dealer is guilty.
        assert_eq!(
            ev.judge(&ctx, &signing, &e.public(), &pk, |_| false),
            Verdict::DealerGuilty
        );
        // Evidence with a wrong exchange point, another recipient's key or a ciphertext the
        // dealer did not sign is void.
        let mut wrong = ev.clone();
        wrong.shared += RISTRETTO_BASEPOINT_POINT;
        assert_eq!(
            wrong.judge(&ctx, &signing, &e.public(), &pk, |_| false),
            Verdict::Void
        );
        let other = dealer.public().encryption;
        assert_eq!(
            ev.judge(&ctx, &signing, &e.public(), &other, |_| false),
            Verdict::Void
        );
        let mut forged = ev.clone();
        forged.ciphertext[0] ^= 1;
        assert_eq!(
            forged.judge(&ctx, &signing, &e.public(), &pk, |_| false),
            Verdict::Void
        );
        // The exchange point opens nothing sealed under another ephemeral key.
        let e2 = EphemeralKey::generate(&mut rng);
        let ct2 = e2.seal(&ctx, &pk, b"the share");
        assert!(ctx.open_with(&e2.public(), &ev.shared, &ct2).is_none());
        // The encoding round-trips.
        let mut w = Writer::new(crate::wire::MessageKind::DkgComplaint);
        ev.write(&mut w);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes, crate::wire::MessageKind::DkgComplaint)
            .unwrap_or_else(|_| unreachable!());
        let back = ShareEvidence::read(&mut r, ct.len()).ok();
        assert_eq!(back.as_ref(), Some(&ev));
        assert_eq!(bytes.len() - 2, ShareEvidence::encoded_len(ct.len()));
    }
}
