//! Every kernel the CPU runs against the scalar definition; the field axioms.

use proptest::prelude::*;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// Textbook multiplication: carry-less product, then long division by 0x11B.
fn reference_mul(a: u8, b: u8) -> u8 {
    let mut p: u16 = 0;
    for i in 0..8 {
        if b >> i & 1 == 1 {
            p ^= u16::from(a) << i;
        }
    }
    for i in (8..16).rev() {
        if p >> i & 1 == 1 {
            p ^= 0x11B << (i - 8);
        }
    }
    p as u8
}

fn scalar_mul_acc(dst: &mut [u8], src: &[u8], c: u8) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d ^= mul(c, s);
    }
}

fn scalar_lin_comb(len: usize, srcs: &[&[u8]], coeffs: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (s, &c) in srcs.iter().zip(coeffs) {
        scalar_mul_acc(&mut out, s, c);
    }
    out
}

fn random_bytes(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// Constants worth testing: the identities, the top bit, and random ones.
fn constants(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut c = vec![0, 1, 2, 0x80, 0xFF];
    c.extend((0..3).map(|_| rng.random::<u8>()));
    c
}

#[test]
fn scalar_mul_matches_textbook_and_fips197() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            assert_eq!(mul(a, b), reference_mul(a, b), "{a} * {b}");
        }
    }
    // FIPS 197 §4.2 and §4.2.1.
    assert_eq!(mul(0x57, 0x83), 0xC1);
    assert_eq!(mul(0x57, 0x13), 0xFE);
}

#[test]
fn inverse_times_x_is_one() {
    assert_eq!(inv(0), 0);
    for x in 1..=255u8 {
        assert_eq!(mul(inv(x), x), 1, "inv({x})");
        assert_eq!(div(x, x), 1);
        assert_eq!(pow(x, 255), 1);
    }
}

proptest! {
    #[test]
    fn field_axioms(a in any::<u8>(), b in any::<u8>(), c in any::<u8>()) {
        prop_assert_eq!(mul(a, b), mul(b, a));
        prop_assert_eq!(mul(mul(a, b), c), mul(a, mul(b, c)));
        prop_assert_eq!(mul(a, b ^ c), mul(a, b) ^ mul(a, c));
        prop_assert_eq!(mul(a, 1), a);
        prop_assert_eq!(mul(a, 0), 0);
        prop_assert_eq!(a ^ a, 0);
        if b != 0 {
            prop_assert_eq!(mul(div(a, b), b), a);
        }
    }
}

#[test]
fn detection_picks_the_last_available_kernel_unless_portable_is_asked_for() {
    let all = Backend::available();
    assert_eq!(all[0].kernel(), Kernel::Portable);
    let best = match crate::kernels::active() {
        crate::kernels::KernelSet::Auto => all.last().map(|b| b.kernel()),
        crate::kernels::KernelSet::Portable => Some(Kernel::Portable),
    };
    assert_eq!(Some(kernel()), best);
    eprintln!(
        "gf256 kernels available: {:?}; in use: {}",
        all.iter().map(|b| b.kernel()).collect::<Vec<_>>(),
        kernel()
    );
}

/// Runs every kernel on `len` bytes at byte offset `off` of larger buffers (so the slices are
/// unaligned) and compares with the scalar definition.
fn check_all_kernels(rng: &mut ChaCha8Rng, len: usize, off: usize, terms: &[usize]) {
    let backing_src = random_bytes(rng, len + off + 1);
    let src = &backing_src[off..off + len];
    let backing_dst = random_bytes(rng, len + off + 1);
    let dst0 = &backing_dst[off..off + len];
    let many: Vec<Vec<u8>> = (0..terms.iter().copied().max().unwrap_or(0))
        .map(|_| random_bytes(rng, len + off))
        .collect();
    let many: Vec<&[u8]> = many.iter().map(|v| &v[off..]).collect();
    for backend in Backend::available() {
        let name = backend.kernel();
        for c in constants(rng) {
            let mut want = dst0.to_vec();
            scalar_mul_acc(&mut want, src, c);
            let mut got = backing_dst.clone();
            backend.mul_acc(&mut got[off..off + len], src, c);
            assert_eq!(
                &got[off..off + len],
                &want[..],
                "{name} mul_acc len {len} c {c}"
            );
            assert_eq!(
                got[..off],
                backing_dst[..off],
                "{name} mul_acc wrote before"
            );
            assert_eq!(
                got[off + len..],
                backing_dst[off + len..],
                "{name} mul_acc wrote after"
            );

            let want: Vec<u8> = dst0.iter().map(|&d| mul(c, d)).collect();
            let mut got = backing_dst.clone();
            backend.mul_slice(&mut got[off..off + len], c);
            assert_eq!(
                &got[off..off + len],
                &want[..],
                "{name} mul_slice len {len} c {c}"
            );
            assert_eq!(
                got[off + len..],
                backing_dst[off + len..],
                "{name} mul_slice wrote after"
            );
        }
        for &k in terms {
            let srcs = &many[..k];
            for rows in [1usize, 3, 9] {
                let mut coeffs = vec![0u8, 1];
                coeffs.extend((2..(rows * k).max(2)).map(|_| rng.random::<u8>()));
                coeffs.truncate(rows * k);
                let mut got: Vec<Vec<u8>> = (0..rows).map(|_| backing_dst.clone()).collect();
                let mut dsts: Vec<&mut [u8]> =
                    got.iter_mut().map(|g| &mut g[off..off + len]).collect();
                backend.mul_matrix(&mut dsts, srcs, &coeffs);
                for (j, g) in got.iter().enumerate() {
                    let row = &coeffs[j * k..(j + 1) * k];
                    assert_eq!(
                        g[off..off + len],
                        scalar_lin_comb(len, srcs, row)[..],
                        "{name} mul_matrix len {len} sources {k} rows {rows}: output {j}"
                    );
                    assert_eq!(
                        g[..off],
                        backing_dst[..off],
                        "{name} mul_matrix wrote before"
                    );
                    assert_eq!(
                        g[off + len..],
                        backing_dst[off + len..],
                        "{name} mul_matrix wrote after"
                    );
                }
            }
        }
    }
}

#[test]
fn kernels_agree_on_every_short_length_and_offset() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0006_f256);
    for len in 0..=300 {
        let off = len % 37;
        let terms: &[usize] = if len % 10 == 0 {
            &[1, 2, 5, 8, 9, 17]
        } else {
            &[1, 3]
        };
        check_all_kernels(&mut rng, len, off, terms);
    }
}

#[test]
fn kernels_agree_on_one_mebibyte_plus_seven() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0100_0007);
    check_all_kernels(&mut rng, (1 << 20) + 7, 3, &[3, 5, 10]);
}

#[test]
fn public_api_checks_and_empty_cases() {
    let mut d = [1u8, 2, 3];
    lin_comb(&mut d, &[], &[]);
    assert_eq!(d, [0, 0, 0]);
    let (mut a, mut b) = ([1u8, 2], [3u8, 4]);
    mul_matrix(&mut [&mut a, &mut b], &[], &[]);
    assert_eq!((a, b), ([0, 0], [0, 0]));
    let (mut a, mut b) = ([1u8, 2], [3u8, 4]);
    mul_matrix(&mut [&mut a, &mut b], &[&[1, 2], &[3, 3]], &[1, 0, 2, 1]);
    assert_eq!((a, b), ([1, 2], [1, 7]));
    let mut d = [5u8, 6];
    lin_comb(&mut d, &[&[1, 2], &[3, 3]], &[1, 1]);
    assert_eq!(d, [2, 1]);
    let mut d = [1u8, 2, 3];
    mul_acc(&mut d, &[1, 1, 1], 1);
    assert_eq!(d, [0, 3, 2]);
    let r = std::panic::catch_unwind(|| {
        let mut d = [0u8; 3];
        mul_acc(&mut d, &[1, 2], 3);
    });
    assert!(r.is_err(), "mismatched lengths must panic");
}
