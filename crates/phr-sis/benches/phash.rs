//! Criterion benchmarks of the perceptual-hash pipeline, stage by stage, on the bundled images.
//!
//! Python imagehash (the reference users compare against) is timed on the same files by
//! `scripts/bench_phash.sh`; the `image_hasher` crate is the Rust peer and is measured here in
//! the same run (its hashes differ from imagehash's: it is a speed reference only).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phr_sis::phash::decode::decode;
use phr_sis::phash::{HashAlgorithm, phash, pillow_convert};
use phr_sis::testing::fixtures_dir;
use std::hint::black_box;

fn load(ext: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(fixtures_dir().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn stages(c: &mut Criterion) {
    let pngs = load("png");
    let decoded: Vec<_> = pngs.iter().map(|b| decode(b).unwrap()).collect();
    let lumas: Vec<_> = decoded.iter().map(pillow_convert::to_luma).collect();
    let mut g = c.benchmark_group("phash_png_stages");
    g.throughput(Throughput::Elements(pngs.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            pngs.iter()
                .map(|p| decode(black_box(p)).unwrap().width)
                .sum::<u32>()
        })
    });
    g.bench_function("convert_l", |b| {
        b.iter(|| {
            decoded
                .iter()
                .map(|d| pillow_convert::to_luma(black_box(d)).width())
                .sum::<u32>()
        })
    });
    g.bench_function("resize_32", |b| {
        b.iter(|| {
            lumas
                .iter()
                .map(|l| u32::from(black_box(l).resize_lanczos(32, 32).pixels()[0]))
                .sum::<u32>()
        })
    });
    g.bench_function("phash_from_luma", |b| {
        b.iter(|| {
            lumas
                .iter()
                .map(|l| phash(black_box(l)).0)
                .fold(0, u64::wrapping_add)
        })
    });
    g.bench_function("hash_decoded", |b| {
        b.iter(|| {
            decoded
                .iter()
                .map(|d| phash(&pillow_convert::to_luma(black_box(d))).0)
                .fold(0, u64::wrapping_add)
        })
    });
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    for (name, files) in [("png", load("png")), ("jpeg", load("jpg"))] {
        let mut g = c.benchmark_group(format!("phash_open_decode_hash_{name}"));
        g.throughput(Throughput::Elements(files.len() as u64));
        g.bench_function("dealer-free-sis", |b| {
            b.iter(|| {
                files
                    .iter()
                    .map(|f| {
                        HashAlgorithm::Phash
                            .hash(&phr_sis::phash::decode_luma(black_box(f)).unwrap())
                            .0
                    })
                    .fold(0, u64::wrapping_add)
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = stages, end_to_end
}
criterion_main!(benches);
