//! Which JPEG decoder reproduces Pillow's pixels? Decodes every fixture JPEG with mozjpeg
//! (libjpeg-turbo), the `image` crate (zune-jpeg) and jpeg-decoder, runs each through the same
//! imagehash-exact pipeline, and compares grey pixels with Pillow's `convert("L")` (dumped by
//! `run.sh`) and hashes with imagehash's (the fixtures' reference_hashes.csv).
use phr_sis::phash::{
    LumaImage, average_hash,
    decode::{DecodedImage, ImageFormat, PixelData},
    dhash, phash, pillow_convert,
};
use std::time::Instant;
fn luma_from(w: u32, h: u32, data: PixelData) -> LumaImage {
    pillow_convert::to_luma(&DecodedImage {
        width: w,
        height: h,
        format: ImageFormat::Jpeg,
        data,
    })
}
fn main() {
    let mut files: Vec<_> = ["images", "images-modes"]
        .iter()
        .flat_map(|s| phr_sis::testing::reference_hashes(s))
        .filter(|r| r.path.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut tally = std::collections::BTreeMap::new();
    let mut pix = std::collections::BTreeMap::<&str, (u32, u32, u32)>::new();
    for r in &files {
        let bytes = std::fs::read(&r.path).unwrap();
        let want = [r.phash.clone(), r.dhash.clone(), r.ahash.clone()];
        let hashes = |l: &LumaImage| {
            [
                phash(l).to_string(),
                dhash(l).to_string(),
                average_hash(l).to_string(),
            ]
        };
        // ours (mozjpeg)
        let t = Instant::now();
        let ours = phr_sis::phash::decode_luma(&bytes).unwrap();
        let t_ours = t.elapsed();
        // image crate (zune-jpeg)
        let t = Instant::now();
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg);
        let t_img = t.elapsed();
        let zune = img.ok().map(|img| match img {
            image::DynamicImage::ImageLuma8(b) => {
                let (w, h) = b.dimensions();
                luma_from(w, h, PixelData::L(b.into_raw()))
            }
            other => {
                let b = other.to_rgb8();
                let (w, h) = b.dimensions();
                luma_from(w, h, PixelData::Rgb(b.into_raw()))
            }
        });
        // jpeg-decoder
        let t = Instant::now();
        let mut d = jpeg_decoder::Decoder::new(&bytes[..]);
        let px = d.decode();
        let t_jd = t.elapsed();
        let jd = px.ok().and_then(|px| {
            let info = d.info()?;
            Some(match info.pixel_format {
                jpeg_decoder::PixelFormat::L8 => {
                    luma_from(info.width.into(), info.height.into(), PixelData::L(px))
                }
                jpeg_decoder::PixelFormat::RGB24 => {
                    luma_from(info.width.into(), info.height.into(), PixelData::Rgb(px))
                }
                jpeg_decoder::PixelFormat::CMYK32 => luma_from(
                    info.width.into(),
                    info.height.into(),
                    PixelData::Cmyk(px.iter().map(|v| 255 - v).collect()),
                ),
                _ => return None,
            })
        });
        for (name, l, t) in [
            ("mozjpeg", Some(ours), t_ours),
            ("image/zune-jpeg", zune, t_img),
            ("jpeg-decoder", jd, t_jd),
        ] {
            let e = tally.entry(name).or_insert((0, 0, 0u32, 0f64, 0));
            let pil = std::fs::read(format!(
                "target/pillow-grey/{}.raw",
                r.path.file_name().unwrap().to_string_lossy()
            ))
            .unwrap();
            if let Some(l) = &l {
                let e2 = pix.entry(name).or_insert((0, 0, 0));
                e2.1 += 1;
                if l.pixels() == &pil[..] {
                    e2.0 += 1
                }
                let md = l
                    .pixels()
                    .iter()
                    .zip(&pil)
                    .map(|(a, b)| (*a as i32 - *b as i32).unsigned_abs())
                    .max()
                    .unwrap_or(0);
                e2.2 = e2.2.max(md);
            }
            match l {
                Some(l) => {
                    let h = hashes(&l);
                    for (a, b) in h.iter().zip(&want) {
                        e.1 += 1;
                        if a == b {
                            e.0 += 1
                        } else {
                            let d = (u64::from_str_radix(a, 16).unwrap()
                                ^ u64::from_str_radix(b, 16).unwrap())
                            .count_ones();
                            e.2 = e.2.max(d);
                        }
                    }
                    e.3 += t.as_secs_f64() * 1e3;
                }
                None => e.4 += 1,
            }
        }
    }
    println!("{} JPEG files (phash, dhash, ahash each)", files.len());
    for (name, (same, total, maxd)) in &pix {
        println!(
            "{name:16} grey pixels identical to Pillow's convert(\"L\") on {same}/{total} files, max abs diff {maxd}"
        );
    }
    for (name, (exact, total, maxd, ms, failed)) in tally {
        println!(
            "{name:16} exact {exact}/{total}  max diff {maxd} bits  decode {:.2} ms/file  failed {failed}",
            ms / files.len() as f64
        );
    }
}
