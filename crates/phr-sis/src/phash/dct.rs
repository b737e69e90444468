//! Temporary naive DCT (replaced by the pocketfft-exact version).
pub(crate) fn scipy_dct2_32x32(pixels: &[u8; 1024]) -> [f64; 1024] {
    let mut tmp = [0f64; 1024];
    let c = |k: usize, n: usize| 2.0 * (std::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / 64.0).cos();
    for k in 0..32 { for col in 0..32 { let mut s = 0.0; for n in 0..32 { s += f64::from(pixels[n*32+col]) * c(k,n); } tmp[k*32+col] = s; } }
    let mut out = [0f64; 1024];
    for row in 0..32 { for k in 0..32 { let mut s = 0.0; for n in 0..32 { s += tmp[row*32+n] * c(k,n); } out[row*32+k] = s; } }
    out
}
pub(crate) fn phash_bits_from_dct(dct: &[f64; 1024]) -> u64 {
    let mut v: Vec<f64> = (0..64).map(|i| dct[(i/8)*32 + i%8]).collect();
    let corner = v.clone();
    v.sort_by(|a, b| a.total_cmp(b));
    let med = (v[31] + v[32]) / 2.0;
    corner.iter().fold(0u64, |acc, &x| (acc << 1) | u64::from(x > med))
}
