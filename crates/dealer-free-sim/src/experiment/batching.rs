//! The `batching` data: Stage-1's messages, bytes and time as the number of images per
//! threshold-VOPRF token request grows (one batched DLEQ proof per request and node), with
//! and without padding, and what compressing the share payloads saves.
//!
//! For every batch size of [`ExperimentConfig::batch_sizes`] (sizes 0 and above
//! [`TokenContext::max_images`](dealer_free::oprf::tokens::TokenContext::max_images) are
//! skipped) the experiment's images are ingested twice into a fresh deployment on the run's
//! key shares, each run recorded into a trace of its own:
//!
//! * **unpadded**: token requests hold as many images as are left, image payloads are split
//!   at their exact length ([`Padding::None`]);
//! * **padded**: every token request holds exactly `batch` images (a short last group is
//!   filled with dummy images, [`IngestOptions::padded`]), and payloads are padded to
//!   [`Padding::Eighths`] buckets. Eighths rather than powers of two: it hides the length
//!   within 8 buckets per doubling at most 12.5% overhead (powers of two cost up to 100%),
//!   and it is the default of the share format.
//!
//! At the largest batch two more runs compress the payloads ([`IngestOptions::compress`]),
//! padded and unpadded. Every row's counts and bytes are a function of the images and the
//! seed (each run draws from its own ChaCha20 stream of `config.seed`); measured and
//! modelled times sit under keys ending in `_ms`.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use phr_sis::share::{Padding, SplitOptions};

use super::{ExperimentConfig, ExperimentImage, ms, stages};
use crate::SimError;
use crate::deployment::IngestOptions;
use crate::figures::{Figure, Series};
use crate::network::NetworkModel;
use crate::simulator::KeyMaterial;
use crate::trace::{Stage, Trace};
use dealer_free::oprf::tokens::TokenContext;
use dealer_free::wire::MessageKind;
use phr_sis::BandLayout;

/// One Stage-1 run: a batch size, with or without padding and compression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRow {
    /// Images per token request.
    pub batch: usize,
    /// Token requests padded to `batch` images and payloads to [`Padding::Eighths`].
    pub padded: bool,
    /// Payloads deflated before splitting.
    pub compressed: bool,
    /// Token-request messages (requests × nodes asked).
    pub token_requests: usize,
    /// Dummy images in the token requests.
    pub dummy_images: usize,
    /// All Stage-1 messages.
    pub messages: usize,
    /// All Stage-1 bytes.
    pub bytes: usize,
    /// Bytes of token requests and the nodes' answers.
    pub token_bytes: usize,
    /// Bytes of the records (image shares, bit shares, tokens) sent to the nodes.
    pub share_bytes: usize,
    /// Bytes of the secrets split, all images together (framed when compressed, before
    /// padding).
    pub payload_bytes: usize,
    /// CPU of all parties (measured).
    pub cpu_ms: f64,
    /// Stage-1 latency on the LAN preset (measured CPU and the model).
    pub lan_ms: f64,
    /// Stage-1 latency on the WAN preset (measured CPU and the model).
    pub wan_ms: f64,
}

/// Every batching run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchingData {
    /// `t`.
    pub t: u8,
    /// `n`.
    pub n: u8,
    /// Images ingested per run.
    pub images: usize,
    /// Bytes of the image files, all together.
    pub file_bytes: usize,
    /// The payload padding of the padded runs.
    pub payload_padding: &'static str,
    /// One row per batch size and padding, then the compressed runs.
    pub rows: Vec<BatchRow>,
}

/// One run's options.
#[derive(Debug, Clone, Copy)]
struct Variant {
    batch: usize,
    padded: bool,
    compressed: bool,
}

/// Stage-1 over `images` for every batch size of `config`.
pub(crate) fn run(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    key: &KeyMaterial,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<BatchingData, SimError> {
    let context = TokenContext::new(b"dealer-free-sis", BandLayout::default())
        .map_err(|e| SimError::Params(e.to_string()))?;
    let most = context.max_images();
    let mut sizes: Vec<usize> = config
        .batch_sizes
        .iter()
        .copied()
        .filter(|b| (1..=most).contains(b))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut variants: Vec<Variant> = sizes
        .iter()
        .flat_map(|&batch| {
            [false, true].map(|padded| Variant {
                batch,
                padded,
                compressed: false,
            })
        })
        .collect();
    if let Some(&batch) = sizes.last() {
        variants.extend([false, true].map(|padded| Variant {
            batch,
            padded,
            compressed: true,
        }));
    }
    let total = variants.len();
    let mut rows = Vec::with_capacity(total);
    for (i, v) in variants.iter().enumerate() {
        progress("batching", i, total);
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        rng.set_stream(u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1));
        rows.push(run_one(config, images, key, *v, &mut rng)?);
    }
    progress("batching", total, total);
    Ok(BatchingData {
        t: config.threshold.t(),
        n: config.threshold.n(),
        images: images.len(),
        file_bytes: images.iter().map(|i| i.bytes.len()).sum(),
        payload_padding: Padding::Eighths.name(),
        rows,
    })
}

fn run_one(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    key: &KeyMaterial,
    v: Variant,
    rng: &mut ChaCha20Rng,
) -> Result<BatchRow, SimError> {
    let options = IngestOptions {
        split: SplitOptions {
            padding: if v.padded {
                Padding::Eighths
            } else {
                Padding::None
            },
            ..SplitOptions::default()
        },
        batch_images: v.batch,
        padded: v.padded,
        compress: v.compressed,
        ..IngestOptions::default()
    };
    let mut trace = Trace::new();
    let ingested = stages::ingest(config.threshold, key, images, &options, rng, &mut trace)?;
    let report = &ingested.report;
    let summary = trace.stage_summary(Stage::Stage1);
    let token_requests = trace
        .stage_messages(Stage::Stage1)
        .filter(|m| m.kind == Some(MessageKind::TokenRequest))
        .count();
    let latency = |model: NetworkModel| {
        ms(model
            .stage_latency(&trace, Stage::Stage1, config.seed)
            .total)
    };
    Ok(BatchRow {
        batch: v.batch,
        padded: v.padded,
        compressed: v.compressed,
        token_requests,
        dummy_images: report.dummy_images,
        messages: summary.messages,
        bytes: summary.bytes,
        token_bytes: report.bytes.token_requests + report.bytes.token_responses,
        share_bytes: report.bytes.store,
        payload_bytes: report.payload_bytes,
        cpu_ms: ms(trace.stage_cpu_total(Stage::Stage1)),
        lan_ms: latency(NetworkModel::lan()),
        wan_ms: latency(NetworkModel::wan()),
    })
}

impl BatchingData {
    /// The uncompressed row of `batch` with or without padding.
    #[must_use]
    pub fn row(&self, batch: usize, padded: bool) -> Option<&BatchRow> {
        self.rows
            .iter()
            .find(|r| r.batch == batch && r.padded == padded && !r.compressed)
    }

    /// The compressed row of `batch` with or without padding.
    #[must_use]
    pub fn compressed_row(&self, batch: usize, padded: bool) -> Option<&BatchRow> {
        self.rows
            .iter()
            .find(|r| r.batch == batch && r.padded == padded && r.compressed)
    }

    /// What batching, padding and compression save or cost, one sentence each (the
    /// figure's notes and the summary's).
    #[must_use]
    pub fn findings(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let Some(first) = self.rows.iter().map(|r| r.batch).min() else {
            return notes;
        };
        let last = self.rows.iter().map(|r| r.batch).max().unwrap_or(first);
        if let (Some(a), Some(b)) = (self.row(first, true), self.row(last, true)) {
            notes.push(format!(
                "padded, batch {last} vs {first}: {} → {} messages ({}), {} → {} bytes ({}), \
                 WAN {:.0} → {:.0} ms, LAN {:.1} → {:.1} ms",
                a.messages,
                b.messages,
                change(a.messages, b.messages),
                a.bytes,
                b.bytes,
                change(a.bytes, b.bytes),
                a.wan_ms,
                b.wan_ms,
                a.lan_ms,
                b.lan_ms,
            ));
        }
        let mut padding = Vec::new();
        for batch in [last, first] {
            if let (Some(u), Some(p)) = (self.row(batch, false), self.row(batch, true)) {
                padding.push(format!(
                    "padding at batch {batch}: {} → {} bytes ({}); token requests {} → {} \
                     bytes ({} dummy images), shares {} → {} bytes ({} buckets)",
                    u.bytes,
                    p.bytes,
                    change(u.bytes, p.bytes),
                    u.token_bytes,
                    p.token_bytes,
                    p.dummy_images,
                    u.share_bytes,
                    p.share_bytes,
                    self.payload_padding,
                ));
            }
        }
        let mut compression = Vec::new();
        for padded in [true, false] {
            if let (Some(plain), Some(c)) =
                (self.row(last, padded), self.compressed_row(last, padded))
            {
                let saving = plain.payload_bytes.saturating_sub(c.payload_bytes) as f64
                    / plain.payload_bytes.max(1) as f64;
                let verdict = if saving < 0.05 {
                    " — these files are already compressed (PNG/JPEG), so deflate saves little"
                } else {
                    ""
                };
                compression.push(format!(
                    "compression ({}, batch {last}): payloads {} → {} bytes ({}), shares {} → \
                     {} bytes ({}){verdict}",
                    if padded { "padded" } else { "unpadded" },
                    plain.payload_bytes,
                    c.payload_bytes,
                    change(plain.payload_bytes, c.payload_bytes),
                    plain.share_bytes,
                    c.share_bytes,
                    change(plain.share_bytes, c.share_bytes),
                ));
            }
        }
        // The most telling first: batching, padding and compression at the largest batch.
        let mut padding = padding.into_iter();
        let mut compression = compression.into_iter();
        notes.extend(padding.next());
        notes.extend(compression.next());
        notes.extend(padding);
        notes.extend(compression);
        notes
    }
}

/// `from → to` as a signed percentage.
fn change(from: usize, to: usize) -> String {
    if from == 0 {
        return "n/a".into();
    }
    let pct = (to as f64 - from as f64) / from as f64 * 100.0;
    format!("{pct:+.1}%")
}

/// The figure of `data`, with its data: Stage-1 latency vs images per token request, WAN
/// and LAN, unpadded and padded (and the compressed runs as single points).
#[must_use]
pub fn figure(data: &BatchingData, _all: &super::ExperimentData) -> (Figure, serde_json::Value) {
    let mut f = Figure::lines(
        "batching",
        format!(
            "Stage-1 latency vs images per token request (t = {}, n = {}, {} images)",
            data.t, data.n, data.images
        ),
        "images per token request (log scale)",
        "Stage-1 latency, ms (log scale)",
    )
    .with_log_axes(true, true);
    let points = |padded: bool, compressed: bool, wan: bool| -> Vec<(f64, f64)> {
        data.rows
            .iter()
            .filter(|r| r.padded == padded && r.compressed == compressed)
            .map(|r| (r.batch as f64, if wan { r.wan_ms } else { r.lan_ms }))
            .collect()
    };
    for (wan, net) in [(true, "WAN"), (false, "LAN")] {
        f = f
            .with_series(Series::line(
                format!("{net}, unpadded"),
                points(false, false, wan),
            ))
            .with_series(Series::line(
                format!("{net}, padded"),
                points(true, false, wan),
            ));
        let compressed = points(true, true, wan);
        if !compressed.is_empty() {
            f = f.with_series(Series::line(format!("{net}, padded + deflate"), compressed));
        }
    }
    for note in data.findings() {
        f = f.with_note(note);
    }
    f = f.with_note(format!(
        "one batched DLEQ proof per request and node; padded = requests filled to the batch \
         with dummy images and payloads in {} buckets; latency = measured CPU + network model",
        data.payload_padding
    ));
    (f, serde_json::to_value(data).unwrap_or_default())
}
