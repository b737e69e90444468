#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The DKG's wire encodings: frozen golden bytes (run with `UPDATE_GOLDEN=1` to regenerate
//! after a deliberate format change), exact round trips, and decoders that never panic on
//! arbitrary or mutated input.

use curve25519_dalek::scalar::Scalar;
use dealer_free::dkg::DkgMessage;
use dealer_free::dkg::complain::{Complaint, ComplaintMessage, ComplaintReason};
use dealer_free::dkg::confirm::{CONFIRMATION_LEN, ConfirmationMessage, RepresentationProof};
use dealer_free::dkg::deal::{Deal, ENCRYPTED_SHARE_LEN};
use dealer_free::dkg::justify::{JustificationMessage, Redelivery, SignedDeal};
use dealer_free::dkg::sealed::{Ephemeral, ExchangeProof, ShareEvidence};
use dealer_free::identity::SigningKey;
use dealer_free::vss::{PedersenDealer, generator_g, generator_h};
use phr_sis::testing::fixtures_dir;
use phr_sis::{NodeId, Threshold};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn threshold() -> Threshold {
    Threshold::new(2, 3).unwrap()
}

/// One message of each kind, built from a fixed seed.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let key = SigningKey::random(&mut rng);
    let sig = |rng: &mut ChaCha20Rng| key.sign(b"golden", rng);
    let dealer = PedersenDealer::new(threshold(), &mut rng);
    let deal = Deal {
        dealer: node(1),
        recipient: node(2),
        commitment: dealer.commitment().clone(),
        ephemeral: Ephemeral::new(Scalar::from(3u8) * generator_g(), sig(&mut rng)),
        encrypted_share: [0xa5; ENCRYPTED_SHARE_LEN],
        signature: sig(&mut rng),
    };
    let complaint = ComplaintMessage {
        sender: node(2),
        echo: [0x11; 32],
        complaints: vec![
            Complaint {
                accused: node(1),
                reason: ComplaintReason::InvalidShare,
                evidence: Some(ShareEvidence {
                    ciphertext: vec![0x5a; ENCRYPTED_SHARE_LEN],
                    signature: sig(&mut rng),
                    shared: Scalar::from(4u8) * generator_g(),
                    proof: ExchangeProof::from_parts(Scalar::from(5u8), Scalar::from(6u8)),
                }),
            },
            Complaint {
                accused: node(3),
                reason: ComplaintReason::MissingDeal,
                evidence: None,
            },
        ],
        signature: sig(&mut rng),
    };
    let justification = JustificationMessage {
        sender: node(1),
        redelivery: Some(Redelivery {
            commitment: dealer.commitment().clone(),
            commitment_bytes: dealer.commitment().to_bytes(),
            ephemeral: Ephemeral::new(Scalar::from(3u8) * generator_g(), sig(&mut rng)),
            deals: vec![(node(2), vec![0xa5; ENCRYPTED_SHARE_LEN], sig(&mut rng))],
        }),
        evidence: vec![SignedDeal {
            dealer: node(3),
            digest: [0x33; 32],
            recipient: node(1),
            ciphertext: vec![0x77; ENCRYPTED_SHARE_LEN],
            signature: sig(&mut rng),
        }],
        signature: sig(&mut rng),
    };
    let confirmation = ConfirmationMessage {
        sender: node(3),
        transcript: [0x44; 32],
        verification_share: Scalar::from(9u8) * generator_g(),
        proof: RepresentationProof {
            r1: Scalar::from(10u8) * generator_g(),
            r2: Scalar::from(11u8) * generator_h(),
            z: Scalar::from(12u8),
            z_blinding: Scalar::from(13u8),
        },
        signature: sig(&mut rng),
    };
    vec![
        ("deal", deal.to_bytes()),
        ("complaint", complaint.to_bytes()),
        ("justification", justification.to_bytes()),
        ("confirmation", confirmation.to_bytes()),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn encodings_match_the_golden_bytes() {
    let text: String = samples()
        .iter()
        .map(|(name, bytes)| format!("{name} {}\n", hex(bytes)))
        .collect();
    let path = fixtures_dir().join("vectors/wire/dkg-2-of-3.hex");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 once)", path.display()));
    assert_eq!(text, golden, "a DKG message encoding changed");
}

#[test]
fn messages_round_trip_exactly() {
    for (name, bytes) in samples() {
        let msg = DkgMessage::from_bytes(&bytes, threshold()).unwrap();
        let again = match &msg {
            DkgMessage::Deal(m) => m.to_bytes(),
            DkgMessage::Complaint(m) => m.to_bytes(),
            DkgMessage::Justification(m) => m.to_bytes(),
            DkgMessage::Confirmation(m) => m.to_bytes(),
        };
        assert_eq!(again, bytes, "{name}");
        // Every strict prefix is rejected, and so is one trailing byte.
        for cut in 0..bytes.len() {
            assert!(
                DkgMessage::from_bytes(&bytes[..cut], threshold()).is_err(),
                "{name} cut {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(DkgMessage::from_bytes(&longer, threshold()).is_err());
    }
    assert_eq!(samples()[3].1.len(), CONFIRMATION_LEN);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_never_panics_on_arbitrary_bytes(mut bytes in prop::collection::vec(any::<u8>(), 0..600), kind in 0x11u8..=0x14) {
        if bytes.len() >= 2 {
            bytes[0] = 1;
            bytes[1] = kind;
        }
        let _ = DkgMessage::from_bytes(&bytes, threshold());
    }

    #[test]
    fn decoding_never_panics_on_mutated_messages(which in 0usize..4, pos in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let mut bytes = samples()[which].1.clone();
        let i = pos.index(bytes.len());
        bytes[i] ^= xor;
        let _ = DkgMessage::from_bytes(&bytes, threshold());
    }
}
