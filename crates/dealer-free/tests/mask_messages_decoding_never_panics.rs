#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Decoding the mask dealing's messages (commitment, deal, check) never panics: arbitrary
//! bytes and mutations of valid encodings give a value or a typed error, whatever decodes
//! re-encodes to the same bytes, and no message decodes as another kind.

use dealer_free::mpc::masks::{MaskCheck, MaskCommitment, MaskDeal, MaskKind, deal_checked};
use dealer_free::wire::{MessageKind, peek_kind};
use phr_sis::NodeId;
use phr_sis::fp61::Fp61;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn valid_encodings(seed: u64, n: u8, count: usize) -> [Vec<u8>; 3] {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let servers: Vec<NodeId> = NodeId::first(n).collect();
    let (commitment, deals) = deal_checked(
        [seed as u8; 32],
        MaskKind::ZeroSum,
        servers[0],
        &servers,
        2,
        count,
        &mut rng,
    )
    .unwrap();
    let check = deals[1].verify(&commitment).unwrap();
    [
        commitment.to_bytes(),
        deals[1].to_bytes().to_vec(),
        check.to_bytes(),
    ]
}

fn decodes_back(bytes: &[u8]) -> Result<usize, TestCaseError> {
    let mut decoded = 0;
    if let Ok(c) = MaskCommitment::from_bytes(bytes) {
        prop_assert_eq!(c.to_bytes(), bytes.to_vec());
        decoded += 1;
    }
    if let Ok(d) = MaskDeal::from_bytes(bytes) {
        prop_assert_eq!(d.to_bytes().to_vec(), bytes.to_vec());
        decoded += 1;
    }
    if let Ok(c) = MaskCheck::from_bytes(bytes) {
        prop_assert_eq!(c.to_bytes(), bytes.to_vec());
        decoded += 1;
    }
    prop_assert!(decoded <= 1);
    Ok(decoded)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        decodes_back(&bytes)?;
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header(
        kind in prop_oneof![Just(0x43u8), Just(0x44u8), Just(0x45u8)],
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = vec![1, kind];
        bytes.extend(body);
        decodes_back(&bytes)?;
    }

    #[test]
    fn mutated_valid_encodings(
        seed in any::<u64>(),
        n in 3u8..7,
        count in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let valid = valid_encodings(seed, n, count);
        for (bytes, kind) in valid.iter().zip([
            MessageKind::MaskCommitment,
            MessageKind::MaskDeal,
            MessageKind::MaskCheck,
        ]) {
            prop_assert_eq!(peek_kind(bytes), Ok(kind));
            prop_assert_eq!(decodes_back(bytes)?, 1);
        }
        for mut bytes in valid {
            for (at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            if truncate {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            decodes_back(&bytes)?;
        }
    }
}

#[test]
fn huge_declared_counts_are_refused_before_allocating() {
    // A deal declaring u32::MAX masks with no points behind it.
    let mut bytes = vec![1, 0x44];
    bytes.extend([0u8; 32]);
    bytes.extend([1, 2]);
    bytes.extend([0u8; 32]);
    bytes.extend(u32::MAX.to_be_bytes());
    assert!(MaskDeal::from_bytes(&bytes).is_err());
    // A commitment declaring 65535 servers.
    let mut bytes = vec![1, 0x43];
    bytes.extend([0u8; 32]);
    bytes.push(1);
    bytes.extend(3u32.to_be_bytes());
    bytes.extend(u16::MAX.to_be_bytes());
    assert!(MaskCommitment::from_bytes(&bytes).is_err());
}

#[test]
fn check_layout_is_fixed() {
    let check = MaskCheck {
        session: [0x11; 32],
        dealer: NodeId::new(1).unwrap(),
        node: NodeId::new(2).unwrap(),
        values: [Fp61::from(0x0102u32), Fp61::ZERO, Fp61::ONE],
    };
    let mut expected = vec![1, 0x45];
    expected.extend([0x11; 32]);
    expected.extend([1, 2, 0x02, 0x01, 0, 0, 0, 0, 0, 0]);
    expected.extend([0; 8]);
    expected.extend([1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(expected.len(), MaskCheck::ENCODED_LEN);
    assert_eq!(check.to_bytes(), expected);
    assert_eq!(MaskCheck::from_bytes(&expected).unwrap(), check);
}
