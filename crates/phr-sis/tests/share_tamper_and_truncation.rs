//! Shares: any t reconstruct byte-identically, tampered shares are named and routed around,
//! fewer than t good shares never give bytes, and parsing rejects every malformed input with a
//! typed error and never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use phr_sis::share::{
    BadShareReason, Padding, Scheme, Share, ShareError, ShareFormatError, SplitOptions,
    reconstruct, split_image,
};
use phr_sis::testing::fixtures_dir;
use phr_sis::{ImageId, NodeId, Threshold};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn image() -> Vec<u8> {
    std::fs::read(fixtures_dir().join("images/sk_chelsea.jpg")).unwrap()
}

fn options(scheme: Scheme) -> SplitOptions {
    SplitOptions {
        scheme,
        padding: Padding::Eighths,
    }
}

fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![vec![]];
    }
    if n < k {
        return vec![];
    }
    let mut out = subsets(n - 1, k);
    for mut s in subsets(n - 1, k - 1) {
        s.push(n - 1);
        out.push(s);
    }
    out
}

#[test]
fn every_t_subset_reconstructs_the_exact_bytes() {
    let img = image();
    for scheme in [Scheme::Shamir, Scheme::Compact] {
        for (t, n) in [(1, 1), (1, 3), (2, 3), (3, 5), (5, 5)] {
            let th = Threshold::new(t, n).unwrap();
            let shares = split_image(&img, ImageId(42), th, &options(scheme), &mut rng(7)).unwrap();
            assert_eq!(shares.len(), usize::from(n));
            for subset in subsets(usize::from(n), usize::from(t)) {
                let picked: Vec<Share> = subset.iter().map(|&i| shares[i].clone()).collect();
                let done = reconstruct(&picked).unwrap();
                assert_eq!(
                    &done.image[..],
                    &img[..],
                    "{scheme:?} {t}-of-{n} {subset:?}"
                );
                assert!(done.rejected.is_empty());
            }
        }
    }
}

#[test]
fn compact_shares_are_about_size_over_t() {
    let img = image();
    let th = Threshold::new(3, 5).unwrap();
    let shares = split_image(&img, ImageId(1), th, &options(Scheme::Compact), &mut rng(1)).unwrap();
    let padded = Padding::Eighths.bucket(img.len() as u64);
    for s in &shares {
        assert!((s.payload().len() as u64) < padded / 3 + 64);
    }
}

#[test]
fn a_tampered_share_is_named_and_routed_around() {
    let img = image();
    for scheme in [Scheme::Shamir, Scheme::Compact] {
        let th = Threshold::new(3, 5).unwrap();
        let shares = split_image(&img, ImageId(9), th, &options(scheme), &mut rng(3)).unwrap();
        let mut bytes = shares[1].to_bytes();
        bytes[100] ^= 0x01; // inside node 2's payload
        let tampered = Share::from_bytes(&bytes).unwrap();
        let given = vec![
            shares[0].clone(),
            tampered,
            shares[2].clone(),
            shares[3].clone(),
        ];
        let done = reconstruct(&given).unwrap();
        assert_eq!(&done.image[..], &img[..]);
        assert_eq!(done.rejected.len(), 1);
        assert_eq!(done.rejected[0].node, NodeId::new(2).unwrap());
        assert_eq!(
            done.rejected[0].reason,
            BadShareReason::DoesNotMatchCommitment
        );
        assert!(!done.used.contains(&NodeId::new(2).unwrap()));
    }
}

#[test]
fn fewer_than_t_good_shares_fail_naming_the_bad_nodes() {
    let img = image();
    let th = Threshold::new(3, 5).unwrap();
    let shares = split_image(&img, ImageId(9), th, &options(Scheme::Shamir), &mut rng(4)).unwrap();
    let mut b = shares[4].to_bytes();
    let last = b.len() - 1;
    b[last] ^= 0x80; // node 5's copy of the commitment vector
    let forged_vector = Share::from_bytes(&b).unwrap();
    let mut c = shares[0].to_bytes();
    c[60] ^= 0xff;
    let altered = Share::from_bytes(&c).unwrap();
    let err = reconstruct(&[altered, shares[2].clone(), forged_vector]).unwrap_err();
    match err {
        ShareError::NotEnoughValidShares { needed, valid, bad } => {
            assert_eq!(needed, 3);
            assert_eq!(valid, vec![NodeId::new(3).unwrap()]);
            let bad_nodes: Vec<u8> = bad.iter().map(|b| b.node.get()).collect();
            assert_eq!(bad_nodes, vec![1, 5]);
        }
        other => panic!("unexpected {other}"),
    }
    let message = reconstruct(&shares[..2]).unwrap_err().to_string();
    assert!(message.contains("2 valid shares, 3 needed"), "{message}");
}

#[test]
fn a_share_with_an_altered_header_is_dropped() {
    let img = image();
    let th = Threshold::new(2, 4).unwrap();
    let shares = split_image(&img, ImageId(5), th, &options(Scheme::Shamir), &mut rng(5)).unwrap();
    // Claim a shorter original length: parses, but disagrees with its commitment.
    let mut b = shares[0].to_bytes();
    b[20] = b[20].wrapping_sub(1);
    let altered = Share::from_bytes(&b).unwrap();
    let done = reconstruct(&[altered, shares[1].clone(), shares[2].clone()]).unwrap();
    assert_eq!(&done.image[..], &img[..]);
    assert_eq!(done.rejected[0].node.get(), 1);
}

#[test]
fn mixed_images_are_refused() {
    let img = image();
    let th = Threshold::new(2, 3).unwrap();
    let a = split_image(&img, ImageId(1), th, &options(Scheme::Shamir), &mut rng(6)).unwrap();
    let b = split_image(&img, ImageId(2), th, &options(Scheme::Shamir), &mut rng(6)).unwrap();
    let err = reconstruct(&[a[0].clone(), b[1].clone()]).unwrap_err();
    assert_eq!(
        err,
        ShareError::MixedImages {
            ids: vec![ImageId(1), ImageId(2)]
        }
    );
    assert_eq!(reconstruct(&[]).unwrap_err(), ShareError::NoShares);
}

#[test]
fn parsing_rejects_each_malformed_field() {
    let th = Threshold::new(2, 3).unwrap();
    let shares = split_image(
        b"hello",
        ImageId(3),
        th,
        &options(Scheme::Shamir),
        &mut rng(8),
    )
    .unwrap();
    let good = shares[0].to_bytes();
    let with = |at: usize, v: u8| {
        let mut b = good.clone();
        b[at] = v;
        Share::from_bytes(&b).unwrap_err()
    };
    assert_eq!(with(0, b'X'), ShareFormatError::BadMagic);
    assert_eq!(with(4, 2), ShareFormatError::UnknownVersion(2));
    assert_eq!(with(5, 9), ShareFormatError::UnknownScheme(9));
    assert!(matches!(with(6, 0), ShareFormatError::BadParams(_)));
    assert!(matches!(with(6, 4), ShareFormatError::BadParams(_)));
    assert_eq!(
        with(8, 0),
        ShareFormatError::IndexOutOfRange { index: 0, n: 3 }
    );
    assert_eq!(
        with(8, 4),
        ShareFormatError::IndexOutOfRange { index: 4, n: 3 }
    );
    assert_eq!(with(10, 1), ShareFormatError::NonZeroReserved);
    assert!(matches!(
        with(36, 7),
        ShareFormatError::InconsistentLength(_)
    ));
    assert!(matches!(with(35, 0x7f), ShareFormatError::Oversized { .. }));
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        Share::from_bytes(&long).unwrap_err(),
        ShareFormatError::TrailingBytes { extra: 1 }
    );
    for cut in [0, 3, 11, 39, 40, good.len() - 1] {
        assert!(
            matches!(
                Share::from_bytes(&good[..cut]).unwrap_err(),
                ShareFormatError::Truncated { .. }
            ),
            "cut {cut}"
        );
    }
    assert_eq!(Share::from_bytes(&good).unwrap(), shares[0]);
}

/// The encoding is frozen: a change to these bytes is a format change and needs a new version.
#[test]
fn share_encoding_matches_the_golden_bytes() {
    let th = Threshold::new(2, 3).unwrap();
    for (scheme, name) in [(Scheme::Shamir, "shamir"), (Scheme::Compact, "compact")] {
        let opts = SplitOptions {
            scheme,
            padding: Padding::None,
        };
        let shares = split_image(
            b"dealer-free",
            ImageId(0x0123_4567_89ab_cdef),
            th,
            &opts,
            &mut rng(2026),
        )
        .unwrap();
        let hex: String = shares
            .iter()
            .map(|s| {
                s.to_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    + "\n"
            })
            .collect();
        let path = fixtures_dir().join(format!("vectors/share/{name}-2-of-3.hex"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &hex).unwrap();
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 once)", path.display()));
        assert_eq!(hex, golden, "{name}: share encoding changed");
        for line in golden.lines() {
            let bytes: Vec<u8> = (0..line.len() / 2)
                .map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert!(Share::from_bytes(&bytes).unwrap().verify());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn from_bytes_never_panics_on_arbitrary_input(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Share::from_bytes(&bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_mutated_shares(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        scheme in prop::bool::ANY,
    ) {
        let th = Threshold::new(2, 4).unwrap();
        let scheme = if scheme { Scheme::Compact } else { Scheme::Shamir };
        let shares = split_image(b"some image bytes", ImageId(77), th, &options(scheme), &mut rng(9)).unwrap();
        let mut b = shares[1].to_bytes();
        for (at, v) in flips {
            let i = at.index(b.len());
            b[i] = v;
        }
        let end = cut.index(b.len() + 1);
        if let Ok(share) = Share::from_bytes(&b[..end]) {
            // Whatever parses either verifies or is dropped; reconstruction never returns
            // other bytes than the image.
            let given = vec![share, shares[0].clone(), shares[2].clone()];
            if let Ok(done) = reconstruct(&given) {
                prop_assert_eq!(&done.image[..], b"some image bytes");
            }
        }
    }
}
