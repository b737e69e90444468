//! The batching figure's data and the ingest options behind it: one token request per
//! `batch` images and node asked, padded requests all of one size and exactly the size of a
//! real request, deterministic rows under one seed, and retrieval byte-identical with
//! padding and compression.
#![allow(clippy::unwrap_used)] // test code

mod common;

use common::{smallest_images, without_times};

use std::collections::BTreeSet;

use dealer_free::oprf::tokens::{TokenContext, TokenRequest};
use dealer_free::wire::MessageKind;
use dealer_free_sim::deployment::{
    IngestImage, IngestOptions, LocalDeployment, PAYLOAD_DEFLATE, PAYLOAD_RAW, frame_payload,
    unframe_payload,
};
use dealer_free_sim::experiment::{ExperimentConfig, FigureSet, run_dealer_free_experiment};
use dealer_free_sim::trace::{Stage, StageRecorder, Trace};
use phr_sis::share::{Padding, SplitOptions};
use phr_sis::{BandLayout, ImageHash, NodeId, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The `count` smallest bundled fixtures, with their bytes and pHashes.
fn config(seed: u64) -> ExperimentConfig {
    let mut c = ExperimentConfig::new(Threshold::new(2, 3).unwrap(), seed);
    c.figures = [FigureSet::Batching].into_iter().collect();
    c.batch_sizes = vec![0, 1, 3, 4, 1 << 20];
    c
}

/// Token-request message sizes of `trace`'s Stage-1, in order.
fn request_sizes(trace: &Trace) -> Vec<usize> {
    trace
        .stage_messages(Stage::Stage1)
        .filter(|m| m.kind == Some(MessageKind::TokenRequest))
        .map(|m| m.bytes)
        .collect()
}

fn ingest_options(batch: usize, padded: bool, compress: bool) -> IngestOptions {
    IngestOptions {
        split: SplitOptions {
            padding: if padded {
                Padding::Eighths
            } else {
                Padding::None
            },
            ..SplitOptions::default()
        },
        batch_images: batch,
        padded,
        compress,
        ..IngestOptions::default()
    }
}

#[test]
fn one_token_request_per_batch_and_node_and_the_same_rows_under_one_seed() {
    let imgs = smallest_images(7);
    let a = run_dealer_free_experiment(&config(9), &imgs, &mut |_, _, _| {}).unwrap();
    let b = run_dealer_free_experiment(&config(9), &imgs, &mut |_, _, _| {}).unwrap();
    let data = a.batching.as_ref().unwrap();
    // 0 and sizes above one request's capacity are skipped; two compressed rows at 4.
    let batches: BTreeSet<usize> = data.rows.iter().map(|r| r.batch).collect();
    assert_eq!(batches, [1, 3, 4].into_iter().collect());
    assert_eq!(data.rows.len(), 3 * 2 + 2);
    for r in &data.rows {
        // Each request to the first t = 2 nodes, as the cluster client asks.
        assert_eq!(r.token_requests, imgs.len().div_ceil(r.batch) * 2, "{r:?}");
        let short = imgs.len() % r.batch;
        let dummies = if r.padded && short > 0 {
            r.batch - short
        } else {
            0
        };
        assert_eq!(r.dummy_images, dummies, "{r:?}");
        assert!(r.bytes >= r.token_bytes + r.share_bytes);
    }
    // Fewer requests: fewer messages; padding costs bytes, never saves them.
    let one = data.row(1, true).unwrap();
    let four = data.row(4, true).unwrap();
    assert!(four.messages < one.messages);
    for batch in [1, 3, 4] {
        assert!(data.row(batch, true).unwrap().bytes >= data.row(batch, false).unwrap().bytes);
    }
    assert!(!data.findings().is_empty());
    assert_eq!(
        without_times(&serde_json::to_value(&a.batching).unwrap()),
        without_times(&serde_json::to_value(&b.batching).unwrap())
    );
}

#[test]
fn padded_requests_have_one_size_which_is_a_real_requests_size() {
    let imgs = smallest_images(7);
    let th = Threshold::new(2, 3).unwrap();
    let context = TokenContext::new(b"dealer-free-sis", BandLayout::default()).unwrap();
    let hashes: Vec<ImageHash> = imgs.iter().map(|i| i.hash).collect();
    let ingest: Vec<IngestImage<'_>> = imgs
        .iter()
        .map(|i| IngestImage {
            bytes: &i.bytes,
            hash: i.hash,
        })
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let real_len = |n: usize, rng: &mut ChaCha20Rng| {
        let (_, request) = TokenRequest::for_images(&context, &hashes[..n], rng).unwrap();
        request.to_bytes().len()
    };
    for padded in [false, true] {
        let mut d = LocalDeployment::create(th, None, &mut rng).unwrap();
        let mut trace = Trace::new();
        let mut rec = StageRecorder::new(&mut trace, Stage::Stage1);
        let report = d
            .ingest_with(
                &ingest,
                &ingest_options(3, padded, false),
                &mut rng,
                &mut rec,
            )
            .unwrap();
        assert_eq!(report.ids.len(), imgs.len());
        let sizes = request_sizes(&trace);
        // 7 images in groups of 3: 3 requests, to each of the first t = 2 nodes.
        assert_eq!(sizes.len(), 6);
        let full = real_len(3, &mut rng);
        assert_eq!(sizes[0], full);
        assert_eq!(full, TokenRequest::encoded_len(8, 3));
        let last = *sizes.last().unwrap();
        if padded {
            assert!(sizes.iter().all(|s| *s == full), "{sizes:?}");
            assert_eq!(report.dummy_images, 2);
        } else {
            assert_eq!(last, real_len(1, &mut rng));
            assert!(last < full);
        }
        // The nodes' answers are of one size too when padded.
        let answers: BTreeSet<usize> = trace
            .stage_messages(Stage::Stage1)
            .filter(|m| m.kind == Some(MessageKind::OprfPartialEvaluation))
            .map(|m| m.bytes)
            .collect();
        assert_eq!(answers.len(), if padded { 1 } else { 2 }, "{answers:?}");
    }
}

#[test]
fn retrieval_is_byte_identical_with_padding_and_compression() {
    let fixtures = smallest_images(3);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    // A compressible file (a BMP-like raster of stripes) and an incompressible one.
    let mut bmp = b"BM".to_vec();
    bmp.extend((0..60_000u32).map(|i| u8::try_from((i / 97) % 7 * 31).unwrap()));
    let noise: Vec<u8> = (0..20_000).map(|_| rng.random()).collect();
    assert_eq!(frame_payload(&bmp, true)[0], PAYLOAD_DEFLATE);
    assert!(frame_payload(&bmp, true).len() < bmp.len() / 4);
    assert_eq!(frame_payload(&noise, true)[0], PAYLOAD_RAW);
    assert_eq!(frame_payload(&noise, true).len(), noise.len() + 1);
    assert_eq!(unframe_payload(&frame_payload(&bmp, true)).unwrap(), bmp);
    // Without compression the file is framed as it is.
    assert_eq!(frame_payload(&bmp, false)[0], PAYLOAD_RAW);
    assert_eq!(unframe_payload(&frame_payload(&bmp, false)).unwrap(), bmp);
    assert!(unframe_payload(&[]).is_err());
    assert!(unframe_payload(&[7, 1, 2]).is_err());
    assert!(unframe_payload(&[PAYLOAD_DEFLATE, 0xff, 0xff]).is_err());

    let mut files: Vec<(&[u8], ImageHash)> =
        fixtures.iter().map(|i| (&i.bytes[..], i.hash)).collect();
    files.push((&bmp, ImageHash(0x0123_4567_89ab_cdef)));
    files.push((&noise, ImageHash(0xfedc_ba98_7654_3210)));
    let ingest: Vec<IngestImage<'_>> = files
        .iter()
        .map(|(bytes, hash)| IngestImage { bytes, hash: *hash })
        .collect();
    let th = Threshold::new(2, 3).unwrap();
    let from: Vec<NodeId> = th.nodes().take(2).collect();
    for (padded, compress) in [(true, true), (false, true), (true, false)] {
        let mut d = LocalDeployment::create(th, None, &mut rng).unwrap();
        let mut trace = Trace::new();
        let mut rec = StageRecorder::new(&mut trace, Stage::Stage1);
        let report = d
            .ingest_with(
                &ingest,
                &ingest_options(2, padded, compress),
                &mut rng,
                &mut rec,
            )
            .unwrap();
        let file_bytes: usize = files.iter().map(|(b, _)| b.len()).sum();
        if compress {
            assert!(report.payload_bytes < file_bytes, "the BMP shrinks");
        } else {
            // Every payload is framed: one marker byte per file.
            assert_eq!(report.payload_bytes, file_bytes + files.len());
        }
        let mut rec = StageRecorder::new(&mut trace, Stage::Stage2);
        for (id, (bytes, _)) in report.ids.iter().zip(&files) {
            let (got, rejected) = d.retrieve_recorded(*id, &from, &mut rec).unwrap();
            assert!(rejected.is_empty());
            assert_eq!(&got[..], *bytes, "padded {padded}, compress {compress}");
        }
    }
}
