//! Reed–Solomon decoding over GF(2^61 − 1) with the node ids as evaluation points: opening a
//! shared value from shares of which some may be wrong, and naming the nodes that sent them.
//!
//! A querier that receives from `m` nodes their shares `d(j)` of a polynomial `d` of degree at
//! most `D` holds a Reed–Solomon codeword of length `m` and dimension `D + 1`. Any `D + 1`
//! correct shares determine `d`; with more, up to `e = ⌊(m − D − 1)/2⌋` wrong shares can be
//! corrected ([`decode`]), and the decoder reports which nodes disagree with the decoded
//! polynomial. [`decode_batch`] does the same for many codewords from the same nodes (one per
//! candidate in the secure ranking) and shares the interpolation work between them.
//!
//! # Guarantees
//! - **Unique decoding.** If some polynomial of degree `≤ D` disagrees with at most `e` of the
//!   points, it is unique and it is returned, with exactly the disagreeing nodes in
//!   [`Decoded::wrong`] (sorted). Otherwise the result is [`DecodeError::TooManyErrors`]:
//!   every returned polynomial has been checked against every point, so a wrong value is never
//!   returned silently when more than `e` shares are wrong *and* no other polynomial lies
//!   within distance `e` (no decoder can do better: beyond `e` errors the codeword may be
//!   closer to another polynomial, which is then what the points describe).
//! - **Cheap honest case.** The first `D + 1` points are interpolated and the others checked
//!   against that polynomial; only if one disagrees does the Berlekamp–Welch decoder run.
//!   With `m = D + 1` nothing can be detected and the interpolating polynomial is returned.
//! - **No panics.** Every input, including duplicate ids, too few points, a huge `degree` or
//!   ragged batches, gives a [`DecodeError`], never a panic.
//!
//! The decoder is not constant time: it works on shares that are being opened, whose values
//! (and the identity of the misbehaving nodes) are public to the querier by design.
//!
//! # Algorithm
//! Berlekamp–Welch with `e` at its maximum: unknowns `E` (monic, degree `e`) and `Q` (degree
//! `≤ D + e`) with `Q(x_i) = y_i · E(x_i)` for every point, a linear system of `m` equations
//! in `D + 2e + 1 ≤ m` unknowns solved by Gauss–Jordan elimination over GF(p) (free variables
//! set to 0). If a polynomial `P` within distance `e` exists, *every* solution satisfies
//! `Q = P · E`, so `P = Q / E` with zero remainder; a failed division or an inconsistent
//! system therefore proves that there is none. Cost `O(m^3)` field operations, `m ≤ 255`.
//!
//! # References
//! - E. R. Berlekamp, L. R. Welch, "Error correction for algebraic block codes", US Patent
//!   4,633,470, 1986.
//! - I. S. Reed, G. Solomon, "Polynomial codes over certain finite fields", J. SIAM 8(2), 1960.

use super::Fp61;
use crate::params::NodeId;

/// The outcome of decoding one codeword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The decoded polynomial at 0: the opened value.
    pub value_at_zero: Fp61,
    /// The decoded polynomial's coefficients, lowest degree first; exactly `degree + 1` of
    /// them (leading ones may be 0).
    pub polynomial: Vec<Fp61>,
    /// The nodes whose value is not on [`Self::polynomial`], sorted; at most
    /// `⌊(m − degree − 1)/2⌋` of them.
    pub wrong: Vec<NodeId>,
}

/// Why a codeword could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than `degree + 1` points: the polynomial is not determined.
    #[error("too few points to decode a polynomial: need {needed}, got {got}")]
    TooFewPoints {
        /// `degree + 1`.
        needed: usize,
        /// The number of points given.
        got: usize,
    },
    /// A node appears twice among the points.
    #[error("node {0} appears more than once")]
    DuplicateNode(NodeId),
    /// No polynomial of the degree agrees with all but at most `correctable` of the points.
    #[error(
        "no polynomial of the given degree fits all but at most {correctable} of the {points} \
         points: too many wrong values"
    )]
    TooManyErrors {
        /// The number of wrong values that could have been corrected, `⌊(m − degree − 1)/2⌋`.
        correctable: usize,
        /// The number of points, `m`.
        points: usize,
    },
    /// In a batch, the codeword at `codeword` has too many wrong values (as
    /// [`Self::TooManyErrors`]).
    #[error(
        "codeword {codeword}: no polynomial of the given degree fits all but at most \
         {correctable} of the {points} points: too many wrong values"
    )]
    TooManyErrorsInCodeword {
        /// The index of the codeword in the batch.
        codeword: usize,
        /// The number of wrong values that could have been corrected.
        correctable: usize,
        /// The number of points, `m`.
        points: usize,
    },
    /// In a batch, the number of nodes and the number of value lists differ.
    #[error("{ids} node ids but {values} lists of values")]
    NodeCountMismatch {
        /// The number of node ids.
        ids: usize,
        /// The number of value lists.
        values: usize,
    },
    /// In a batch, a node sent a different number of values than the first node.
    #[error("node {node} sent {got} values, the first node {expected}")]
    LengthMismatch {
        /// The node whose list differs.
        node: NodeId,
        /// The first node's number of values.
        expected: usize,
        /// This node's number of values.
        got: usize,
    },
}

/// Decodes the codeword `points` (node id, that node's value) of a polynomial of degree at most
/// `degree`, correcting up to `⌊(m − degree − 1)/2⌋` wrong values among the `m` points.
///
/// # Errors
/// [`DecodeError::DuplicateNode`] if a node repeats, [`DecodeError::TooFewPoints`] for fewer
/// than `degree + 1` points, [`DecodeError::TooManyErrors`] if no polynomial of degree at most
/// `degree` is within that many wrong values of the points.
pub fn decode(points: &[(NodeId, Fp61)], degree: usize) -> Result<Decoded, DecodeError> {
    let ids: Vec<NodeId> = points.iter().map(|&(id, _)| id).collect();
    check_points(&ids, degree)?;
    let basis = lagrange_basis(ids.get(..=degree).unwrap_or(&ids));
    let ys: Vec<Fp61> = points.iter().map(|&(_, y)| y).collect();
    decode_checked(&ids, &ys, degree, &basis)
}

/// Decodes many codewords from the same nodes: `values[k]` holds node `ids[k]`'s value in
/// every codeword (all lists of one length), and the result holds one [`Decoded`] per
/// codeword, in order. Equivalent to [`decode`] on each codeword, but the interpolation
/// through the first `degree + 1` nodes is prepared once for all of them.
///
/// # Errors
/// [`DecodeError::NodeCountMismatch`] if `ids` and `values` differ in length,
/// [`DecodeError::LengthMismatch`] for ragged value lists, then as [`decode`] —
/// [`DecodeError::DuplicateNode`], [`DecodeError::TooFewPoints`] — and
/// [`DecodeError::TooManyErrorsInCodeword`] for the first codeword that cannot be decoded.
pub fn decode_batch(
    ids: &[NodeId],
    values: &[&[Fp61]],
    degree: usize,
) -> Result<Vec<Decoded>, DecodeError> {
    if ids.len() != values.len() {
        return Err(DecodeError::NodeCountMismatch {
            ids: ids.len(),
            values: values.len(),
        });
    }
    check_points(ids, degree)?;
    let len = values.first().map_or(0, |v| v.len());
    if let Some((&node, v)) = ids.iter().zip(values).find(|(_, v)| v.len() != len) {
        return Err(DecodeError::LengthMismatch {
            node,
            expected: len,
            got: v.len(),
        });
    }
    let basis = lagrange_basis(ids.get(..=degree).unwrap_or(ids));
    let mut ys = vec![Fp61::ZERO; ids.len()];
    (0..len)
        .map(|c| {
            for (y, v) in ys.iter_mut().zip(values) {
                *y = v.get(c).copied().unwrap_or(Fp61::ZERO);
            }
            decode_checked(ids, &ys, degree, &basis).map_err(|e| match e {
                DecodeError::TooManyErrors {
                    correctable,
                    points,
                } => DecodeError::TooManyErrorsInCodeword {
                    codeword: c,
                    correctable,
                    points,
                },
                other => other,
            })
        })
        .collect()
}

/// Distinct ids, at least `degree + 1` of them.
fn check_points(ids: &[NodeId], degree: usize) -> Result<(), DecodeError> {
    let mut seen = [false; 256];
    for &id in ids {
        if let Some(s) = seen.get_mut(usize::from(id.get())) {
            if *s {
                return Err(DecodeError::DuplicateNode(id));
            }
            *s = true;
        }
    }
    let needed = degree.saturating_add(1);
    if ids.len() < needed {
        return Err(DecodeError::TooFewPoints {
            needed,
            got: ids.len(),
        });
    }
    Ok(())
}

/// Decodes `(ids[i], ys[i])` given checked ids (distinct, more than `degree`) and the Lagrange
/// basis of the first `degree + 1` of them.
fn decode_checked(
    ids: &[NodeId],
    ys: &[Fp61],
    degree: usize,
    basis: &[Vec<Fp61>],
) -> Result<Decoded, DecodeError> {
    let m = ids.len();
    let correctable = (m - degree - 1) / 2;
    let too_many = DecodeError::TooManyErrors {
        correctable,
        points: m,
    };
    // Fast path: the polynomial through the first degree + 1 points.
    let mut poly = vec![Fp61::ZERO; degree + 1];
    for (l, &y) in basis.iter().zip(ys) {
        for (p, &c) in poly.iter_mut().zip(l) {
            *p += y * c;
        }
    }
    let xs: Vec<Fp61> = ids.iter().map(|&id| Fp61::from(id)).collect();
    let all_agree = xs
        .iter()
        .zip(ys)
        .skip(degree + 1)
        .all(|(&x, &y)| eval(&poly, x) == y);
    if !all_agree {
        if correctable == 0 {
            return Err(too_many);
        }
        poly = berlekamp_welch(&xs, ys, degree, correctable).ok_or(too_many.clone())?;
    }
    let mut wrong: Vec<NodeId> = ids
        .iter()
        .zip(&xs)
        .zip(ys)
        .filter(|&((_, &x), &y)| eval(&poly, x) != y)
        .map(|((&id, _), _)| id)
        .collect();
    if wrong.len() > correctable {
        return Err(too_many);
    }
    wrong.sort_unstable();
    Ok(Decoded {
        value_at_zero: poly.first().copied().unwrap_or(Fp61::ZERO),
        polynomial: poly,
        wrong,
    })
}

/// Berlekamp–Welch with `e` errors: the polynomial `Q / E` (degree ≤ `degree`, exactly
/// `degree + 1` coefficients), or `None` if the system is inconsistent or `E` does not divide
/// `Q`.
fn berlekamp_welch(xs: &[Fp61], ys: &[Fp61], degree: usize, e: usize) -> Option<Vec<Fp61>> {
    // Unknowns: q_0..q_{degree+e}, then e_0..e_{e-1} (E = x^e + Σ e_k x^k).
    let nq = degree + e + 1;
    let n = nq + e;
    let rows: Vec<Vec<Fp61>> = xs
        .iter()
        .zip(ys)
        .map(|(&x, &y)| {
            // Σ q_k x^k − y Σ e_k x^k = y x^e.
            let mut row = Vec::with_capacity(n + 1);
            let mut pw = Fp61::ONE;
            for _ in 0..nq {
                row.push(pw);
                pw *= x;
            }
            let mut pw = Fp61::ONE;
            for _ in 0..e {
                row.push(-(y * pw));
                pw *= x;
            }
            row.push(y * pw);
            row
        })
        .collect();
    let sol = solve(rows, n)?;
    let q = sol.get(..nq)?;
    let mut err: Vec<Fp61> = sol.get(nq..)?.to_vec();
    err.push(Fp61::ONE);
    let (quot, rem) = div_monic(q, &err);
    if rem.iter().any(|&r| r != Fp61::ZERO) || quot.len() != degree + 1 {
        return None;
    }
    Some(quot)
}

/// One solution of the linear system whose rows are `n` coefficients followed by the right-hand
/// side (Gauss–Jordan elimination, free variables 0), or `None` if it is inconsistent.
fn solve(mut rows: Vec<Vec<Fp61>>, n: usize) -> Option<Vec<Fp61>> {
    let mut pivots: Vec<usize> = Vec::new();
    let mut r = 0;
    for col in 0..n {
        let Some(p) = rows
            .iter()
            .skip(r)
            .position(|row| row.get(col).is_some_and(|&v| v != Fp61::ZERO))
        else {
            continue;
        };
        // r + p < rows.len() since position() found it among rows[r..].
        rows.swap(r, r + p);
        let pivot_row = {
            let row = rows.get_mut(r)?;
            let inv = row.get(col)?.inv();
            for v in row.iter_mut() {
                *v *= inv;
            }
            row.clone()
        };
        for (i, row) in rows.iter_mut().enumerate() {
            if i == r {
                continue;
            }
            let f = row.get(col).copied().unwrap_or(Fp61::ZERO);
            if f != Fp61::ZERO {
                for (v, &pv) in row.iter_mut().zip(&pivot_row) {
                    *v -= f * pv;
                }
            }
        }
        pivots.push(col);
        r += 1;
    }
    // The rows without a pivot have zero coefficients: their right-hand side must be 0 too.
    if rows
        .iter()
        .skip(r)
        .any(|row| row.last().is_some_and(|&v| v != Fp61::ZERO))
    {
        return None;
    }
    let mut x = vec![Fp61::ZERO; n];
    for (row, &col) in rows.iter().zip(&pivots) {
        if let (Some(slot), Some(&rhs)) = (x.get_mut(col), row.last()) {
            *slot = rhs;
        }
    }
    Some(x)
}

/// `num / den` for a monic `den` (last coefficient 1): (quotient, remainder), coefficients
/// lowest first; the remainder has `den.len() − 1` coefficients.
fn div_monic(num: &[Fp61], den: &[Fp61]) -> (Vec<Fp61>, Vec<Fp61>) {
    let e = den.len().saturating_sub(1);
    let mut rem = num.to_vec();
    let qlen = num.len().saturating_sub(e);
    let mut quot = vec![Fp61::ZERO; qlen];
    for (i, q) in quot.iter_mut().enumerate().rev() {
        let c = rem.get(i + e).copied().unwrap_or(Fp61::ZERO);
        *q = c;
        for (r, &d) in rem.iter_mut().skip(i).zip(den) {
            *r -= c * d;
        }
    }
    rem.truncate(e);
    (quot, rem)
}

/// `poly(x)` by Horner's rule.
fn eval(poly: &[Fp61], x: Fp61) -> Fp61 {
    poly.iter().rev().fold(Fp61::ZERO, |acc, &c| acc * x + c)
}

/// The Lagrange basis polynomials of the distinct points `ids` (each `ids.len()`
/// coefficients, lowest first): `ℓ_i(x_j) = [i = j]`.
fn lagrange_basis(ids: &[NodeId]) -> Vec<Vec<Fp61>> {
    let xs: Vec<Fp61> = ids.iter().map(|&id| Fp61::from(id)).collect();
    // M(x) = Π (x − x_i).
    let mut master = vec![Fp61::ONE];
    for &x in &xs {
        let mut next = vec![Fp61::ZERO; master.len() + 1];
        for (k, &c) in master.iter().enumerate() {
            if let Some(hi) = next.get_mut(k + 1) {
                *hi += c;
            }
            if let Some(lo) = next.get_mut(k) {
                *lo -= x * c;
            }
        }
        master = next;
    }
    xs.iter()
        .map(|&xi| {
            let num = div_linear(&master, xi);
            let w = eval(&num, xi).inv();
            num.into_iter().map(|c| c * w).collect()
        })
        .collect()
}

/// `m / (x − a)` for an `a` that is a root of `m` (the remainder is dropped).
fn div_linear(m: &[Fp61], a: Fp61) -> Vec<Fp61> {
    let mut q = vec![Fp61::ZERO; m.len().saturating_sub(1)];
    let mut carry = Fp61::ZERO;
    for (qk, &mk) in q.iter_mut().rev().zip(m.iter().rev()) {
        carry = mk + a * carry;
        *qk = carry;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u8) -> NodeId {
        NodeId::new(v).unwrap()
    }

    fn f(v: u64) -> Fp61 {
        Fp61::from_u64(v)
    }

    fn points(poly: &[Fp61], ids: &[u8]) -> Vec<(NodeId, Fp61)> {
        ids.iter()
            .map(|&i| (id(i), eval(poly, f(u64::from(i)))))
            .collect()
    }

    #[test]
    fn interpolates_exactly_d_plus_one_points() {
        let poly = [f(42), f(7), f(1 << 60)];
        let d = decode(&points(&poly, &[3, 9, 200]), 2).unwrap();
        assert_eq!(d.value_at_zero, f(42));
        assert_eq!(d.polynomial, poly);
        assert!(d.wrong.is_empty());
    }

    #[test]
    fn corrects_and_names_wrong_nodes() {
        // D = 2, m = 7: e = 2.
        let poly = [f(5), f(11), f(13)];
        let mut pts = points(&poly, &[1, 2, 3, 4, 5, 6, 7]);
        pts[0].1 += f(1);
        pts[5].1 = f(0);
        let d = decode(&pts, 2).unwrap();
        assert_eq!(d.value_at_zero, f(5));
        assert_eq!(d.polynomial, poly);
        assert_eq!(d.wrong, vec![id(1), id(6)]);
    }

    #[test]
    fn too_many_errors_is_an_error() {
        // D = 2, m = 4: e = 0, one wrong value is detected but not corrected.
        let poly = [f(5), f(11), f(13)];
        let mut pts = points(&poly, &[1, 2, 3, 4]);
        pts[3].1 += f(1);
        assert_eq!(
            decode(&pts, 2),
            Err(DecodeError::TooManyErrors {
                correctable: 0,
                points: 4
            })
        );
    }

    #[test]
    fn degree_zero() {
        let mut pts = points(&[f(9)], &[1, 2, 3]);
        pts[1].1 = f(4);
        let d = decode(&pts, 0).unwrap();
        assert_eq!(d.value_at_zero, f(9));
        assert_eq!(d.wrong, vec![id(2)]);
    }

    #[test]
    fn bad_inputs() {
        let pts = [(id(1), f(1)), (id(2), f(2)), (id(1), f(3))];
        assert_eq!(decode(&pts, 1), Err(DecodeError::DuplicateNode(id(1))));
        assert_eq!(
            decode(&pts[..2], 2),
            Err(DecodeError::TooFewPoints { needed: 3, got: 2 })
        );
        assert_eq!(
            decode(&[], usize::MAX),
            Err(DecodeError::TooFewPoints {
                needed: usize::MAX,
                got: 0
            })
        );
        assert_eq!(
            decode_batch(&[id(1)], &[], 0),
            Err(DecodeError::NodeCountMismatch { ids: 1, values: 0 })
        );
        let a = [f(1), f(2)];
        let b = [f(1)];
        assert_eq!(
            decode_batch(&[id(1), id(2)], &[&a, &b], 0),
            Err(DecodeError::LengthMismatch {
                node: id(2),
                expected: 2,
                got: 1
            })
        );
        assert_eq!(decode_batch(&[id(1), id(2)], &[&[], &[]], 1), Ok(vec![]));
    }

    #[test]
    fn batch_matches_single_and_names_the_codeword() {
        let polys = [[f(1), f(2), f(3)], [f(4), f(5), f(6)], [f(7), f(8), f(9)]];
        let nodes = [2u8, 4, 6, 8, 10];
        let ids: Vec<NodeId> = nodes.iter().map(|&i| id(i)).collect();
        let mut per_node: Vec<Vec<Fp61>> = nodes
            .iter()
            .map(|&i| polys.iter().map(|p| eval(p, f(u64::from(i)))).collect())
            .collect();
        per_node[4][1] += f(3);
        let views: Vec<&[Fp61]> = per_node.iter().map(Vec::as_slice).collect();
        let out = decode_batch(&ids, &views, 2).unwrap();
        for (c, d) in out.iter().enumerate() {
            let pts: Vec<(NodeId, Fp61)> =
                ids.iter().zip(&per_node).map(|(&i, v)| (i, v[c])).collect();
            assert_eq!(d, &decode(&pts, 2).unwrap());
            assert_eq!(d.polynomial, polys[c]);
        }
        assert_eq!(out[1].wrong, vec![id(10)]);
        per_node[3][2] += f(1);
        per_node[4][2] += f(1);
        let views: Vec<&[Fp61]> = per_node.iter().map(Vec::as_slice).collect();
        assert_eq!(
            decode_batch(&ids, &views, 2),
            Err(DecodeError::TooManyErrorsInCodeword {
                codeword: 2,
                correctable: 1,
                points: 5
            })
        );
    }
}
