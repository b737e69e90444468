//! DLEQ proofs of RFC 9497 §2.2: `GenerateProof` (with `ComputeCompositesFast`) and
//! `VerifyProof` (with `ComputeComposites`), batched over any number of
//! (blinded, evaluated) element pairs with one proof.
//!
//! Only the secret scalars (`k`, `r`) are multiplied in constant time. The composites
//! `M = Σ d_i·C_i` and `Z = Σ d_i·D_i`, and everything the verifier computes, involve only
//! public values (elements on the wire, weights hashed from them, the proof) and use
//! variable-time multiscalar multiplication.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::hash::{hash_to_scalar, sha512};
use super::{ELEMENT_LEN, Mode, OprfError};

/// Length-prefixed encoding `I2OSP(len(x), 2) || x` of a 32-byte element.
const LEN_32: [u8; 2] = (ELEMENT_LEN as u16).to_be_bytes();

/// The encodings of a batch of points (`SerializeElement` of each).
pub(super) fn encode_all(points: &[RistrettoPoint]) -> Vec<[u8; ELEMENT_LEN]> {
    points.iter().map(|p| p.compress().to_bytes()).collect()
}

/// `k·C_i` for every `C_i`, with the encodings of the results.
///
/// The encodings come from one batched inversion: the products are computed as
/// `(k/2)·C_i` and `RistrettoPoint::double_and_compress_batch` encodes their doubles, so
/// the cost is one constant-time scalar multiplication per element plus one inversion for
/// the whole batch (instead of one inversion per element).
pub(super) fn evaluate_and_encode(
    k: &Scalar,
    c: &[RistrettoPoint],
) -> (Vec<RistrettoPoint>, Vec<[u8; ELEMENT_LEN]>) {
    let mut half_k = k * Scalar::from(2u8).invert();
    let halves: Vec<RistrettoPoint> = c.iter().map(|ci| half_k * ci).collect();
    half_k.zeroize();
    let encodings = RistrettoPoint::double_and_compress_batch(&halves)
        .into_iter()
        .map(|e| e.to_bytes())
        .collect();
    let d = halves.iter().map(|h| h + h).collect();
    (d, encodings)
}

/// The (blinded, evaluated) element pairs `(C_i, D_i)` of one proof, with their encodings
/// (computed once by the caller, who usually needs them anyway).
pub(super) struct Pairs<'a> {
    /// The blinded elements `C_i`.
    pub(super) c: &'a [RistrettoPoint],
    /// `SerializeElement(C_i)`.
    pub(super) c_enc: &'a [[u8; ELEMENT_LEN]],
    /// The evaluated elements `D_i`.
    pub(super) d: &'a [RistrettoPoint],
    /// `SerializeElement(D_i)`.
    pub(super) d_enc: &'a [[u8; ELEMENT_LEN]],
}

/// `ComputeComposites` / `ComputeCompositesFast` shared part: the weights `d_i`.
fn composite_weights(
    mode: Mode,
    b: &RistrettoPoint,
    pairs: &Pairs<'_>,
) -> Result<Vec<Scalar>, OprfError> {
    let n = pairs.c.len();
    if pairs.d.len() != n || pairs.c_enc.len() != n || pairs.d_enc.len() != n {
        return Err(OprfError::LengthMismatch);
    }
    if n == 0 {
        return Err(OprfError::EmptyBatch);
    }
    if n > usize::from(u16::MAX) + 1 {
        return Err(OprfError::BatchTooLarge);
    }
    let ctx = mode.context_string();
    let bm = b.compress().to_bytes();
    let seed_dst = [b"Seed-".as_slice(), &ctx].concat();
    let seed_dst_len = u16::try_from(seed_dst.len())
        .map_err(|_| OprfError::BatchTooLarge)?
        .to_be_bytes();
    let seed = sha512(&[&LEN_32, &bm, &seed_dst_len, &seed_dst]);
    let h2s_dst = mode.dst(b"HashToScalar-");
    let mut out = Vec::with_capacity(n);
    for (i, (ci, di)) in pairs.c_enc.iter().zip(pairs.d_enc).enumerate() {
        let idx = u16::try_from(i).map_err(|_| OprfError::BatchTooLarge)?;
        out.push(hash_to_scalar(
            &[
                &64u16.to_be_bytes(),
                &seed,
                &idx.to_be_bytes(),
                &LEN_32,
                ci,
                &LEN_32,
                di,
                b"Composite",
            ],
            &h2s_dst,
        ));
    }
    Ok(out)
}

/// The challenge `c = HashToScalar(Bm, M, Z, t2, t3, "Challenge")`.
fn challenge(
    mode: Mode,
    b: &RistrettoPoint,
    m: &RistrettoPoint,
    z: &RistrettoPoint,
    t2: &RistrettoPoint,
    t3: &RistrettoPoint,
) -> Scalar {
    let parts = [b, m, z, t2, t3].map(|p| p.compress().to_bytes());
    hash_to_scalar(
        &[
            &LEN_32,
            &parts[0],
            &LEN_32,
            &parts[1],
            &LEN_32,
            &parts[2],
            &LEN_32,
            &parts[3],
            &LEN_32,
            &parts[4],
            b"Challenge",
        ],
        &mode.dst(b"HashToScalar-"),
    )
}

/// `GenerateProof(k, G, B = k·G, C, D)` with proof randomness `r`; returns `(c, s)`.
pub(super) fn generate_proof(
    mode: Mode,
    k: &Scalar,
    b: &RistrettoPoint,
    pairs: &Pairs<'_>,
    r: &Scalar,
) -> Result<(Scalar, Scalar), OprfError> {
    let weights = composite_weights(mode, b, pairs)?;
    // ComputeCompositesFast: M = Σ d_i·C_i (public), Z = k·M.
    let m = RistrettoPoint::vartime_multiscalar_mul(&weights, pairs.c);
    let z = k * m;
    let t2 = RistrettoPoint::mul_base(r);
    let t3 = r * m;
    let ch = challenge(mode, b, &m, &z, &t2, &t3);
    let s = r - ch * k;
    Ok((ch, s))
}

/// `VerifyProof(G, B, C, D, (c, s))`.
pub(super) fn verify_proof(
    mode: Mode,
    b: &RistrettoPoint,
    pairs: &Pairs<'_>,
    proof_c: &Scalar,
    proof_s: &Scalar,
) -> Result<(), OprfError> {
    let weights = composite_weights(mode, b, pairs)?;
    // ComputeComposites: M = Σ d_i·C_i, Z = Σ d_i·D_i.
    let m = RistrettoPoint::vartime_multiscalar_mul(&weights, pairs.c);
    let z = RistrettoPoint::vartime_multiscalar_mul(&weights, pairs.d);
    // t2 = s·G + c·B, t3 = s·M + c·Z.
    let t2 = RistrettoPoint::vartime_double_scalar_mul_basepoint(proof_c, b, proof_s);
    let t3 = RistrettoPoint::vartime_multiscalar_mul([proof_s, proof_c], [&m, &z]);
    let expected = challenge(mode, b, &m, &z, &t2, &t3);
    if bool::from(expected.ct_eq(proof_c)) {
        Ok(())
    } else {
        Err(OprfError::InvalidProof)
    }
}
