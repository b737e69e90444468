//! Property: a Reed–Solomon codeword over GF(2^61 − 1) with the node ids as evaluation points,
//! of a random polynomial of degree `D = 2t − 2` (t = 2..=5) on `m = D + 1 ..= D + 7` random
//! nodes, decodes to the right value with exactly the wrong nodes named, for up to
//! `e = ⌊(m − D − 1)/2⌋` wrong values at random positions; with `e + 1` wrong values it never
//! returns the original polynomial, and whatever it returns is consistent with the points.

use phr_sis::NodeId;
use phr_sis::fp61::Fp61;
use phr_sis::fp61::reed_solomon::{DecodeError, Decoded, decode, decode_batch};
use proptest::prelude::*;

fn eval(poly: &[Fp61], x: Fp61) -> Fp61 {
    poly.iter().rev().fold(Fp61::ZERO, |acc, &c| acc * x + c)
}

/// A case: degree, coefficients, distinct shuffled node ids, and candidate (position, nonzero
/// delta) pairs for the wrong values.
type Case = (usize, Vec<Fp61>, Vec<NodeId>, Vec<(usize, u64)>);

fn case() -> impl Strategy<Value = Case> {
    (2usize..=5, 0usize..=6).prop_flat_map(|(t, extra)| {
        let degree = 2 * t - 2;
        let m = degree + 1 + extra;
        let ids: Vec<u8> = (1..=255).collect();
        (
            Just(degree),
            prop::collection::vec(any::<u64>().prop_map(Fp61::from_u64), degree + 1),
            prop::sample::subsequence(ids, m)
                .prop_shuffle()
                .prop_map(|v| v.into_iter().filter_map(|i| NodeId::new(i).ok()).collect()),
            prop::collection::vec((0..m, 1..(1u64 << 61) - 1), 0..=8),
        )
    })
}

/// The distinct positions from `cand`, at most `k` of them, each with its delta.
fn positions(cand: &[(usize, u64)], k: usize) -> Vec<(usize, Fp61)> {
    let mut out: Vec<(usize, Fp61)> = Vec::new();
    for &(p, d) in cand {
        if out.len() < k && out.iter().all(|&(q, _)| q != p) {
            out.push((p, Fp61::from_u64(d)));
        }
    }
    out
}

fn codeword(poly: &[Fp61], ids: &[NodeId], errs: &[(usize, Fp61)]) -> Vec<(NodeId, Fp61)> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| {
            let y = eval(poly, Fp61::from(id));
            let delta = errs
                .iter()
                .find(|&&(p, _)| p == i)
                .map_or(Fp61::ZERO, |&(_, d)| d);
            (id, y + delta)
        })
        .collect()
}

/// The result is self-consistent: `wrong` is exactly the points off the polynomial.
fn consistent(d: &Decoded, pts: &[(NodeId, Fp61)], degree: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.polynomial.len(), degree + 1);
    prop_assert_eq!(Some(&d.value_at_zero), d.polynomial.first());
    let mut off: Vec<NodeId> = pts
        .iter()
        .filter(|&&(id, y)| eval(&d.polynomial, Fp61::from(id)) != y)
        .map(|&(id, _)| id)
        .collect();
    off.sort();
    prop_assert_eq!(&d.wrong, &off);
    prop_assert!(d.wrong.len() <= (pts.len() - degree - 1) / 2);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn corrects_up_to_e_errors((degree, poly, ids, cand) in case()) {
        let m = ids.len();
        let e = (m - degree - 1) / 2;
        let errs = positions(&cand, e);
        let pts = codeword(&poly, &ids, &errs);
        let d = decode(&pts, degree).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(d.value_at_zero, poly[0]);
        prop_assert_eq!(&d.polynomial, &poly);
        let mut expected: Vec<NodeId> = errs.iter().map(|&(p, _)| ids[p]).collect();
        expected.sort();
        prop_assert_eq!(&d.wrong, &expected);
        consistent(&d, &pts, degree)?;

        // The batch form agrees, codeword by codeword (here: this one and the clean one).
        let clean = codeword(&poly, &ids, &[]);
        let per_node: Vec<[Fp61; 2]> = pts.iter().zip(&clean).map(|(a, b)| [a.1, b.1]).collect();
        let views: Vec<&[Fp61]> = per_node.iter().map(|v| v.as_slice()).collect();
        let batch = decode_batch(&ids, &views, degree)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(batch.len(), 2);
        prop_assert_eq!(&batch[0], &d);
        prop_assert_eq!(&batch[1].polynomial, &poly);
        prop_assert!(batch[1].wrong.is_empty());
    }

    #[test]
    fn e_plus_one_errors_never_pass_as_the_original((degree, poly, ids, cand) in case()) {
        let m = ids.len();
        let e = (m - degree - 1) / 2;
        let errs = positions(&cand, e + 1);
        prop_assume!(errs.len() == e + 1);
        let pts = codeword(&poly, &ids, &errs);
        match decode(&pts, degree) {
            Ok(d) => {
                prop_assert_ne!(&d.polynomial, &poly);
                consistent(&d, &pts, degree)?;
            }
            Err(err) => prop_assert_eq!(
                err,
                DecodeError::TooManyErrors { correctable: e, points: m }
            ),
        }
    }

    #[test]
    fn duplicate_node_is_an_error((degree, poly, ids, _cand) in case(), dup in any::<prop::sample::Index>()) {
        let mut pts = codeword(&poly, &ids, &[]);
        let again = pts[dup.index(pts.len())];
        pts.push(again);
        prop_assert_eq!(decode(&pts, degree), Err(DecodeError::DuplicateNode(again.0)));
    }

    #[test]
    fn too_few_points_is_an_error((degree, poly, ids, _cand) in case()) {
        let pts = codeword(&poly, &ids[..degree], &[]);
        prop_assert_eq!(
            decode(&pts, degree),
            Err(DecodeError::TooFewPoints { needed: degree + 1, got: degree })
        );
    }
}
