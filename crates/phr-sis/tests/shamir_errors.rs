//! Property: inputs that cannot be split or combined give typed errors that name the problem
//! (never a panic or a wrong secret).

use phr_sis::fp61::{self, Fp61};
use phr_sis::shamir::{self, ShamirError, ShamirShare};
use phr_sis::{NodeId, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn id(v: u8) -> NodeId {
    match NodeId::new(v) {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    }
}

fn shares(t: u8, n: u8) -> Vec<ShamirShare> {
    let Ok(th) = Threshold::new(t, n) else {
        panic!("valid threshold");
    };
    shamir::split(b"attack at dawn", th, &mut ChaCha8Rng::seed_from_u64(1))
}

#[test]
fn fewer_than_t_shares() {
    let s = shares(3, 5);
    let err = shamir::combine(&s[..2], 3);
    assert_eq!(
        err,
        Err(ShamirError::NotEnoughShares {
            given: 2,
            needed: 3
        })
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("only 2 share(s)") && msg.contains("t = 3"),
        "{msg}"
    );
    assert_eq!(
        shamir::combine(&[], 1),
        Err(ShamirError::NotEnoughShares {
            given: 0,
            needed: 1
        })
    );
}

#[test]
fn duplicate_ids() {
    let s = shares(3, 5);
    let dup = vec![s[0].clone(), s[1].clone(), s[0].clone()];
    let err = shamir::combine(&dup, 3);
    assert_eq!(err, Err(ShamirError::DuplicateId(id(1))));
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("node id 1"), "{msg}");
    // Also when the duplicate is beyond the first t, and for split_for.
    let late = vec![s[3].clone(), s[1].clone(), s[2].clone(), s[3].clone()];
    assert_eq!(
        shamir::combine(&late, 3),
        Err(ShamirError::DuplicateId(id(4)))
    );
    let nodes = [id(4), id(9), id(4)];
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    assert_eq!(
        shamir::split_for(b"x", 2, &nodes, &mut rng),
        Err(ShamirError::DuplicateId(id(4)))
    );
}

#[test]
fn shares_of_different_lengths() {
    let mut s = shares(2, 3);
    s[2] = ShamirShare::new(id(3), vec![0; 5]);
    let err = shamir::combine(&s, 2);
    assert_eq!(
        err,
        Err(ShamirError::LengthMismatch {
            id: id(3),
            len: 5,
            first: id(1),
            expected: 14
        })
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("node 3 has 5") && msg.contains("node 1 has 14"),
        "{msg}"
    );
}

#[test]
fn zero_threshold_and_too_few_nodes() {
    let s = shares(2, 3);
    assert_eq!(shamir::combine(&s, 0), Err(ShamirError::ZeroThreshold));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    assert_eq!(
        shamir::split_for(b"x", 0, &[id(1)], &mut rng),
        Err(ShamirError::ZeroThreshold)
    );
    assert_eq!(
        shamir::split_for(b"x", 3, &[id(1), id(2)], &mut rng),
        Err(ShamirError::TooFewNodes {
            given: 2,
            needed: 3
        })
    );
    let mut reuse = shares(2, 3);
    let before = reuse.clone();
    assert_eq!(
        shamir::split_into(b"other", 4, &mut reuse, &mut rng),
        Err(ShamirError::TooFewNodes {
            given: 3,
            needed: 4
        })
    );
    assert_eq!(reuse, before, "failed split_into left the shares untouched");
}

#[test]
fn fp61_errors() {
    let Ok(th) = Threshold::new(2, 3) else {
        panic!("valid threshold");
    };
    let values = [Fp61::from_u64(5), Fp61::from_u64(6)];
    let shares = fp61::split_values(&values, th, &mut ChaCha8Rng::seed_from_u64(4));
    let views: Vec<(NodeId, &[Fp61])> = shares.iter().map(|(i, v)| (*i, v.as_slice())).collect();
    assert_eq!(
        fp61::combine_values(&views[..1], 2),
        Err(ShamirError::NotEnoughShares {
            given: 1,
            needed: 2
        })
    );
    assert_eq!(
        fp61::combine_values(&[views[0], views[0]], 2),
        Err(ShamirError::DuplicateId(id(1)))
    );
    assert_eq!(
        fp61::combine_values(&[views[0], (id(2), &values[..1])], 2),
        Err(ShamirError::LengthMismatch {
            id: id(2),
            len: 1,
            first: id(1),
            expected: 2
        })
    );
    assert_eq!(
        fp61::combine_values(&views, 0),
        Err(ShamirError::ZeroThreshold)
    );
    assert_eq!(
        fp61::lagrange_at_zero(&[]),
        Err(ShamirError::NotEnoughShares {
            given: 0,
            needed: 1
        })
    );
    assert_eq!(
        fp61::lagrange_at_zero(&[id(7), id(7)]),
        Err(ShamirError::DuplicateId(id(7)))
    );
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    assert_eq!(
        fp61::split_values_for(&values, 2, &[id(1)], &mut rng),
        Err(ShamirError::TooFewNodes {
            given: 1,
            needed: 2
        })
    );
}
