//! RFC 9497 Oblivious Pseudorandom Functions, ciphersuite ristretto255-SHA512.
//!
//! Implements the OPRF (`0x00`) and VOPRF (`0x01`) modes of
//! [RFC 9497](https://www.rfc-editor.org/rfc/rfc9497) (the POPRF mode is not
//! implemented):
//!
//! * key generation: [`derive_key_pair`] (`DeriveKeyPair`, §3.2.1);
//! * client: [`blind`] (`Blind`), [`finalize`] (`Finalize`, OPRF mode),
//!   [`verifiable_finalize`] / [`verifiable_finalize_batch`] (`Finalize` of VOPRF mode,
//!   verifying the server's DLEQ proof first);
//! * server: [`blind_evaluate`] (OPRF mode), [`verifiable_blind_evaluate`] and
//!   [`verifiable_blind_evaluate_batch`] (VOPRF mode; one DLEQ proof for a whole batch,
//!   `GenerateProof` with `ComputeCompositesFast`, §2.2).
//!
//! Hashing: `HashToGroup` is `hash_to_ristretto255` (RFC 9380 Appendix B) over
//! `expand_message_xmd` with SHA-512 (RFC 9380 §5.3.1) and DST
//! `"HashToGroup-" ‖ contextString`; `HashToScalar` likewise with DST
//! `"HashToScalar-" ‖ contextString`, where
//! `contextString = "OPRFV1-" ‖ I2OSP(mode, 1) ‖ "-ristretto255-SHA512"` (§3.1).
//!
//! Guarantees:
//! * All deserialization is strict: non-canonical encodings and the identity element are
//!   rejected with a typed [`OprfError`]; non-canonical scalars are rejected.
//! * Randomness comes only from the caller-supplied [`rand::CryptoRng`]; the
//!   `*_with_blind` / `*_with_proof_randomness` variants take it explicitly (for test
//!   vectors, RFC 9497 Appendix A) and must not be used with reused or predictable values.
//! * Secret scalars ([`SecretKey`], [`Blind`]) are zeroized on drop and their `Debug`
//!   output is `<redacted>`.
//!
//! The crate is sans-IO: all functions are pure computations on bytes and values.
//!
//! Built on top: [`threshold`] (the VOPRF evaluated by `t` of `n` key-share holders) and
//! [`tokens`] (search tokens for pHash bands, in fixed-size requests).

mod dleq;
mod hash;
pub mod threshold;
pub mod tokens;

use core::fmt;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a serialized element (`Ne`).
pub const ELEMENT_LEN: usize = 32;
/// Length of a serialized scalar (`Ns`).
pub const SCALAR_LEN: usize = 32;
/// Length of a serialized proof (`2·Ns`).
pub const PROOF_LEN: usize = 64;
/// Length of the PRF output (`Nh`, SHA-512).
pub const OUTPUT_LEN: usize = 64;

/// Errors of the OPRF protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OprfError {
    /// A byte string is not the canonical encoding of a ristretto255 element.
    #[error("invalid (non-canonical) ristretto255 element encoding")]
    InvalidElement,
    /// An element decoded to the identity, which the RFC forbids on the wire.
    #[error("identity element not allowed")]
    IdentityElement,
    /// A byte string is not the canonical encoding of a scalar mod ℓ.
    #[error("invalid (non-canonical) scalar encoding")]
    InvalidScalar,
    /// A scalar that must be non-zero (blind, secret key) is zero.
    #[error("zero scalar not allowed")]
    ZeroScalar,
    /// The private input hashed to the identity element (`InvalidInputError`).
    #[error("input maps to the identity element")]
    InvalidInput,
    /// An input or info string is longer than 65535 bytes (it is length-prefixed with 2 bytes).
    #[error("input or info longer than 65535 bytes")]
    InputTooLong,
    /// `DeriveKeyPair` found no non-zero scalar within 256 attempts (`DeriveKeyPairError`).
    #[error("DeriveKeyPair failed")]
    DeriveKeyPair,
    /// The DLEQ proof did not verify (`VerifyError`).
    #[error("proof verification failed")]
    InvalidProof,
    /// A batch was empty.
    #[error("empty batch")]
    EmptyBatch,
    /// A batch had more than 65536 elements (indices are encoded with 2 bytes).
    #[error("batch too large")]
    BatchTooLarge,
    /// The caller stopped an evaluation part way ([`threshold::partial_evaluate_while`]).
    #[error("the evaluation was stopped before its end")]
    Stopped,
    /// Batched arguments (inputs, blinds, elements) have different lengths.
    #[error("batch length mismatch")]
    LengthMismatch,
}

/// Protocol mode (RFC 9497 §3.1). POPRF (`0x02`) is not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// `modeOPRF = 0x00`.
    Oprf,
    /// `modeVOPRF = 0x01`.
    Voprf,
}

impl Mode {
    fn id(self) -> u8 {
        match self {
            Mode::Oprf => 0x00,
            Mode::Voprf => 0x01,
        }
    }

    /// `contextString = "OPRFV1-" ‖ I2OSP(mode, 1) ‖ "-ristretto255-SHA512"`.
    fn context_string(self) -> Vec<u8> {
        let mut v = b"OPRFV1-".to_vec();
        v.push(self.id());
        v.extend_from_slice(b"-ristretto255-SHA512");
        v
    }

    /// `prefix ‖ contextString`.
    fn dst(self, prefix: &[u8]) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.extend_from_slice(&self.context_string());
        v
    }
}

fn decode_element(bytes: &[u8; ELEMENT_LEN]) -> Result<RistrettoPoint, OprfError> {
    let p = CompressedRistretto(*bytes)
        .decompress()
        .ok_or(OprfError::InvalidElement)?;
    if p.is_identity() {
        return Err(OprfError::IdentityElement);
    }
    Ok(p)
}

fn decode_scalar(bytes: &[u8; SCALAR_LEN]) -> Result<Scalar, OprfError> {
    Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes)).ok_or(OprfError::InvalidScalar)
}

/// A canonical, non-zero scalar (secret keys and blinds must not be zero).
fn decode_nonzero_scalar(bytes: &[u8; SCALAR_LEN]) -> Result<Scalar, OprfError> {
    let s = decode_scalar(bytes)?;
    if s == Scalar::ZERO {
        return Err(OprfError::ZeroScalar);
    }
    Ok(s)
}

fn random_scalar<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        if s != Scalar::ZERO {
            return s;
        }
    }
}

fn len_prefix(len: usize) -> Result<[u8; 2], OprfError> {
    u16::try_from(len)
        .map(u16::to_be_bytes)
        .map_err(|_| OprfError::InputTooLong)
}

macro_rules! element_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name(RistrettoPoint);

        impl $name {
            /// Serializes the element (`SerializeElement`, 32 bytes).
            #[must_use]
            pub fn to_bytes(&self) -> [u8; ELEMENT_LEN] {
                self.0.compress().to_bytes()
            }

            /// Deserializes an element (`DeserializeElement`).
            ///
            /// # Errors
            /// [`OprfError::InvalidElement`] for a non-canonical or invalid encoding,
            /// [`OprfError::IdentityElement`] for the identity.
            pub fn from_bytes(bytes: &[u8; ELEMENT_LEN]) -> Result<Self, OprfError> {
                decode_element(bytes).map(Self)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0.compress()).finish()
            }
        }
    };
}

element_type!(
    /// The client's blinded input `blind · HashToGroup(input)`.
    BlindedElement
);
element_type!(
    /// The server's evaluation `skS · blindedElement`.
    EvaluationElement
);
element_type!(
    /// The server's public key `pkS = skS · G` (VOPRF mode).
    PublicKey
);

impl PublicKey {
    /// `s·G` for a secret scalar (a key share's verification share).
    pub(crate) fn from_secret_scalar(s: &Scalar) -> PublicKey {
        PublicKey(RistrettoPoint::mul_base(s))
    }
}

/// The server's secret key `skS`. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Scalar);

impl SecretKey {
    /// Generates a random non-zero secret key.
    pub fn random<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self(random_scalar(rng))
    }

    /// Deserializes a secret key (little-endian scalar, 32 bytes).
    ///
    /// # Errors
    /// [`OprfError::InvalidScalar`] if non-canonical, [`OprfError::ZeroScalar`] if zero.
    pub fn from_bytes(bytes: &[u8; SCALAR_LEN]) -> Result<Self, OprfError> {
        decode_nonzero_scalar(bytes).map(Self)
    }

    /// Serializes the secret key (`SerializeScalar`).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SCALAR_LEN] {
        self.0.to_bytes()
    }

    /// The matching public key `skS · G`.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey(RistrettoPoint::mul_base(&self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The client's blinding scalar. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Blind(Scalar);

impl Blind {
    /// Deserializes a blind (little-endian scalar, 32 bytes).
    ///
    /// # Errors
    /// [`OprfError::InvalidScalar`] if non-canonical, [`OprfError::ZeroScalar`] if zero.
    pub fn from_bytes(bytes: &[u8; SCALAR_LEN]) -> Result<Self, OprfError> {
        decode_nonzero_scalar(bytes).map(Self)
    }

    /// Serializes the blind.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SCALAR_LEN] {
        self.0.to_bytes()
    }
}

impl fmt::Debug for Blind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Blind(<redacted>)")
    }
}

/// Randomness `r` of a DLEQ proof, for [`verifiable_blind_evaluate_with_proof_randomness`].
/// Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ProofRandomness(Scalar);

impl ProofRandomness {
    /// Deserializes the proof randomness (little-endian scalar, 32 bytes).
    ///
    /// # Errors
    /// [`OprfError::InvalidScalar`] if non-canonical.
    pub fn from_bytes(bytes: &[u8; SCALAR_LEN]) -> Result<Self, OprfError> {
        decode_scalar(bytes).map(Self)
    }
}

impl fmt::Debug for ProofRandomness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProofRandomness(<redacted>)")
    }
}

/// A DLEQ proof `(c, s)` (RFC 9497 §2.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Proof {
    c: Scalar,
    s: Scalar,
}

impl Proof {
    /// Serializes the proof as `SerializeScalar(c) ‖ SerializeScalar(s)`.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..SCALAR_LEN].copy_from_slice(&self.c.to_bytes());
        out[SCALAR_LEN..].copy_from_slice(&self.s.to_bytes());
        out
    }

    /// Deserializes a proof.
    ///
    /// # Errors
    /// [`OprfError::InvalidScalar`] if either scalar is non-canonical.
    pub fn from_bytes(bytes: &[u8; PROOF_LEN]) -> Result<Self, OprfError> {
        let mut c = [0u8; SCALAR_LEN];
        let mut s = [0u8; SCALAR_LEN];
        c.copy_from_slice(&bytes[..SCALAR_LEN]);
        s.copy_from_slice(&bytes[SCALAR_LEN..]);
        Ok(Self {
            c: decode_scalar(&c)?,
            s: decode_scalar(&s)?,
        })
    }
}

/// `DeriveKeyPair(seed, info)` (RFC 9497 §3.2.1) for the given mode.
///
/// # Errors
/// [`OprfError::InputTooLong`] if `info` exceeds 65535 bytes;
/// [`OprfError::DeriveKeyPair`] if no non-zero scalar is found (probability ≈ 2⁻²⁵²·²⁵⁶).
pub fn derive_key_pair(
    mode: Mode,
    seed: &[u8; 32],
    info: &[u8],
) -> Result<(SecretKey, PublicKey), OprfError> {
    let info_len = len_prefix(info.len())?;
    let dst = mode.dst(b"DeriveKeyPair");
    for counter in 0..=u8::MAX {
        let sk = hash::hash_to_scalar(&[seed, &info_len, info, &[counter]], &dst);
        if sk != Scalar::ZERO {
            let sk = SecretKey(sk);
            let pk = sk.public_key();
            return Ok((sk, pk));
        }
    }
    Err(OprfError::DeriveKeyPair)
}

/// Client `Blind(input)` with fresh randomness.
///
/// # Errors
/// [`OprfError::InvalidInput`] if the input hashes to the identity.
pub fn blind<R: rand::CryptoRng + ?Sized>(
    mode: Mode,
    input: &[u8],
    rng: &mut R,
) -> Result<(Blind, BlindedElement), OprfError> {
    let b = Blind(random_scalar(rng));
    let be = blind_with_blind(mode, input, &b)?;
    Ok((b, be))
}

/// Client `Blind(input)` with an explicit blind (test vectors only; never reuse a blind).
///
/// # Errors
/// [`OprfError::InvalidInput`] if the input hashes to the identity.
pub fn blind_with_blind(
    mode: Mode,
    input: &[u8],
    blind: &Blind,
) -> Result<BlindedElement, OprfError> {
    let p = hash::hash_to_group(&[input], &mode.dst(b"HashToGroup-"));
    if p.is_identity() {
        return Err(OprfError::InvalidInput);
    }
    Ok(BlindedElement(blind.0 * p))
}

/// Server `BlindEvaluate` of OPRF mode: `skS · blindedElement`.
#[must_use]
pub fn blind_evaluate(sk: &SecretKey, blinded: &BlindedElement) -> EvaluationElement {
    EvaluationElement(sk.0 * blinded.0)
}

/// `Finalize` hash: `Hash(len ‖ input ‖ len ‖ unblinded ‖ "Finalize")`.
fn finalize_hash(
    input: &[u8],
    blind: &Blind,
    evaluated: &EvaluationElement,
) -> Result<[u8; OUTPUT_LEN], OprfError> {
    let input_len = len_prefix(input.len())?;
    let n = blind.0.invert() * evaluated.0;
    let unblinded = n.compress().to_bytes();
    Ok(hash::sha512(&[
        &input_len,
        input,
        &(ELEMENT_LEN as u16).to_be_bytes(),
        &unblinded,
        b"Finalize",
    ]))
}

/// Client `Finalize` of OPRF mode.
///
/// # Errors
/// [`OprfError::InputTooLong`] if `input` exceeds 65535 bytes.
pub fn finalize(
    input: &[u8],
    blind: &Blind,
    evaluated: &EvaluationElement,
) -> Result<[u8; OUTPUT_LEN], OprfError> {
    finalize_hash(input, blind, evaluated)
}

/// Server `BlindEvaluate` of VOPRF mode with fresh proof randomness.
///
/// # Errors
/// Never for a single element in practice; errors as
/// [`verifiable_blind_evaluate_batch`].
pub fn verifiable_blind_evaluate<R: rand::CryptoRng + ?Sized>(
    sk: &SecretKey,
    blinded: &BlindedElement,
    rng: &mut R,
) -> Result<(EvaluationElement, Proof), OprfError> {
    let (mut evs, proof) =
        verifiable_blind_evaluate_batch(sk, core::slice::from_ref(blinded), rng)?;
    let ev = evs.pop().ok_or(OprfError::EmptyBatch)?;
    Ok((ev, proof))
}

/// Server `BlindEvaluate` of VOPRF mode for a batch, with one proof for the whole batch.
///
/// # Errors
/// [`OprfError::EmptyBatch`] / [`OprfError::BatchTooLarge`] for batch sizes outside 1..=65536.
pub fn verifiable_blind_evaluate_batch<R: rand::CryptoRng + ?Sized>(
    sk: &SecretKey,
    blinded: &[BlindedElement],
    rng: &mut R,
) -> Result<(Vec<EvaluationElement>, Proof), OprfError> {
    let r = ProofRandomness(random_scalar(rng));
    verifiable_blind_evaluate_batch_with_proof_randomness(sk, blinded, &r)
}

/// [`verifiable_blind_evaluate`] with explicit proof randomness (test vectors only).
///
/// # Errors
/// As [`verifiable_blind_evaluate_batch`].
pub fn verifiable_blind_evaluate_with_proof_randomness(
    sk: &SecretKey,
    blinded: &BlindedElement,
    r: &ProofRandomness,
) -> Result<(EvaluationElement, Proof), OprfError> {
    let (mut evs, proof) = verifiable_blind_evaluate_batch_with_proof_randomness(
        sk,
        core::slice::from_ref(blinded),
        r,
    )?;
    let ev = evs.pop().ok_or(OprfError::EmptyBatch)?;
    Ok((ev, proof))
}

/// [`verifiable_blind_evaluate_batch`] with explicit proof randomness (test vectors only).
///
/// # Errors
/// As [`verifiable_blind_evaluate_batch`].
pub fn verifiable_blind_evaluate_batch_with_proof_randomness(
    sk: &SecretKey,
    blinded: &[BlindedElement],
    r: &ProofRandomness,
) -> Result<(Vec<EvaluationElement>, Proof), OprfError> {
    let c: Vec<RistrettoPoint> = blinded.iter().map(|b| b.0).collect();
    let (d, d_enc) = dleq::evaluate_and_encode(&sk.0, &c);
    let c_enc = dleq::encode_all(&c);
    let pk = sk.public_key();
    let pairs = dleq::Pairs {
        c: &c,
        c_enc: &c_enc,
        d: &d,
        d_enc: &d_enc,
    };
    let (pc, ps) = dleq::generate_proof(Mode::Voprf, &sk.0, &pk.0, &pairs, &r.0)?;
    Ok((
        d.into_iter().map(EvaluationElement).collect(),
        Proof { c: pc, s: ps },
    ))
}

/// Client `Finalize` of VOPRF mode: verifies the proof, then computes the output.
///
/// # Errors
/// [`OprfError::InvalidProof`] if the proof does not verify;
/// [`OprfError::InputTooLong`] if `input` exceeds 65535 bytes.
pub fn verifiable_finalize(
    input: &[u8],
    blind: &Blind,
    blinded: &BlindedElement,
    evaluated: &EvaluationElement,
    pk: &PublicKey,
    proof: &Proof,
) -> Result<[u8; OUTPUT_LEN], OprfError> {
    let mut out = verifiable_finalize_batch(
        &[input],
        core::slice::from_ref(blind),
        core::slice::from_ref(blinded),
        core::slice::from_ref(evaluated),
        pk,
        proof,
    )?;
    out.pop().ok_or(OprfError::EmptyBatch)
}

/// Client `Finalize` of VOPRF mode for a batch sharing one proof.
///
/// # Errors
/// [`OprfError::LengthMismatch`] if the slices differ in length;
/// [`OprfError::EmptyBatch`] / [`OprfError::BatchTooLarge`];
/// [`OprfError::InvalidProof`] if the proof does not verify;
/// [`OprfError::InputTooLong`] if an input exceeds 65535 bytes.
pub fn verifiable_finalize_batch(
    inputs: &[&[u8]],
    blinds: &[Blind],
    blinded: &[BlindedElement],
    evaluated: &[EvaluationElement],
    pk: &PublicKey,
    proof: &Proof,
) -> Result<Vec<[u8; OUTPUT_LEN]>, OprfError> {
    let n = inputs.len();
    if blinds.len() != n || blinded.len() != n || evaluated.len() != n {
        return Err(OprfError::LengthMismatch);
    }
    let c: Vec<RistrettoPoint> = blinded.iter().map(|b| b.0).collect();
    let d: Vec<RistrettoPoint> = evaluated.iter().map(|e| e.0).collect();
    let (c_enc, d_enc) = (dleq::encode_all(&c), dleq::encode_all(&d));
    let pairs = dleq::Pairs {
        c: &c,
        c_enc: &c_enc,
        d: &d,
        d_enc: &d_enc,
    };
    dleq::verify_proof(Mode::Voprf, &pk.0, &pairs, &proof.c, &proof.s)?;
    inputs
        .iter()
        .zip(blinds)
        .zip(evaluated)
        .map(|((input, b), e)| finalize_hash(input, b, e))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn roundtrip_and_rejections() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let sk = SecretKey::random(&mut rng);
        let pk = sk.public_key();
        let inputs: [&[u8]; 3] = [b"a", b"bb", b""];
        let mut blinds = Vec::new();
        let mut blinded = Vec::new();
        for i in inputs {
            let (b, be) = blind(Mode::Voprf, i, &mut rng).unwrap();
            blinds.push(b);
            blinded.push(be);
        }
        let (evs, proof) = verifiable_blind_evaluate_batch(&sk, &blinded, &mut rng).unwrap();
        let outs =
            verifiable_finalize_batch(&inputs, &blinds, &blinded, &evs, &pk, &proof).unwrap();
        assert_eq!(outs.len(), 3);
        // Wrong key: proof must fail.
        let other = SecretKey::random(&mut rng).public_key();
        assert_eq!(
            verifiable_finalize_batch(&inputs, &blinds, &blinded, &evs, &other, &proof),
            Err(OprfError::InvalidProof)
        );
        // Swapped evaluations: proof must fail.
        let mut swapped = evs;
        swapped.swap(0, 1);
        assert_eq!(
            verifiable_finalize_batch(&inputs, &blinds, &blinded, &swapped, &pk, &proof),
            Err(OprfError::InvalidProof)
        );
        // Identity and non-canonical encodings are rejected.
        assert_eq!(
            BlindedElement::from_bytes(&[0u8; 32]),
            Err(OprfError::IdentityElement)
        );
        assert_eq!(
            EvaluationElement::from_bytes(&[0xffu8; 32]),
            Err(OprfError::InvalidElement)
        );
        assert_eq!(
            Blind::from_bytes(&[0xffu8; 32]).map(|_| ()),
            Err(OprfError::InvalidScalar)
        );
        assert_eq!(format!("{sk:?}"), "SecretKey(<redacted>)");
        assert_eq!(format!("{:?}", blinds[0]), "Blind(<redacted>)");
    }

    #[test]
    fn tampered_proof_and_single_mode() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let (sk, pk) = derive_key_pair(Mode::Voprf, &[3u8; 32], b"info").unwrap();
        let (b, be) = blind(Mode::Voprf, b"x", &mut rng).unwrap();
        let (ev, proof) = verifiable_blind_evaluate(&sk, &be, &mut rng).unwrap();
        let out = verifiable_finalize(b"x", &b, &be, &ev, &pk, &proof).unwrap();
        let mut bytes = proof.to_bytes();
        bytes[40] ^= 1;
        let bad = Proof::from_bytes(&bytes).unwrap();
        assert_eq!(
            verifiable_finalize(b"x", &b, &be, &ev, &pk, &bad),
            Err(OprfError::InvalidProof)
        );
        assert_eq!(
            Proof::from_bytes(&[0xff; PROOF_LEN]),
            Err(OprfError::InvalidScalar)
        );
        // The output does not depend on the blind.
        let (b2, be2) = blind(Mode::Voprf, b"x", &mut rng).unwrap();
        let (ev2, proof2) = verifiable_blind_evaluate(&sk, &be2, &mut rng).unwrap();
        assert_eq!(
            verifiable_finalize(b"x", &b2, &be2, &ev2, &pk, &proof2).unwrap(),
            out
        );
        // OPRF mode: output is deterministic in (key, input) as well.
        let (osk, _) = derive_key_pair(Mode::Oprf, &[3u8; 32], b"info").unwrap();
        let (ob, obe) = blind(Mode::Oprf, b"x", &mut rng).unwrap();
        let o1 = finalize(b"x", &ob, &blind_evaluate(&osk, &obe)).unwrap();
        let (ob2, obe2) = blind(Mode::Oprf, b"x", &mut rng).unwrap();
        let o2 = finalize(b"x", &ob2, &blind_evaluate(&osk, &obe2)).unwrap();
        assert_eq!(o1, o2);
        assert_ne!(o1, out);
        assert_eq!(
            verifiable_finalize_batch(&[], &[], &[], &[], &pk, &proof),
            Err(OprfError::EmptyBatch)
        );
    }
}
