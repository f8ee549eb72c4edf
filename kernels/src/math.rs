//! Element-wise pieces: a SIMD `exp` (softmax), GELU by erf, LayerNorm, L2 normalisation.
//! `exp` is Cephes' single-precision range reduction + polynomial (relative error ~2e-7), so the
//! kernel agrees with the numpy reference in `selfsup_trainer/text/kernel.py`, which uses `np.exp`.

use core::arch::wasm32::*;

#[inline(always)]
pub fn exp4(x: v128) -> v128 {
    // Floor at -80, not -87: e^-80 times a softmax's 1/total stays a normal float (denormals are slow).
    // pmin/pmax: one minps/maxps each; min/max's NaN and ±0 rules cost V8 ~8 instructions apiece.
    let x = f32x4_pmin(f32x4_pmax(x, f32x4_splat(-80.0)), f32x4_splat(88.3));
    // n = round(x / ln 2); r = x - n ln 2 in two parts for precision.
    let n = f32x4_nearest(f32x4_mul(x, f32x4_splat(core::f32::consts::LOG2_E)));
    let r = f32x4_relaxed_nmadd(n, f32x4_splat(0.693_359_4), x);
    let r = f32x4_relaxed_nmadd(n, f32x4_splat(-2.121_944_4e-4), r);
    let mut p = f32x4_splat(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = f32x4_relaxed_madd(p, r, f32x4_splat(c));
    }
    let e = f32x4_add(f32x4_relaxed_madd(p, f32x4_mul(r, r), r), f32x4_splat(1.0));
    // 2^n through the exponent bits.
    // n is a whole number in -116..128: the relaxed (one cvttps2dq) conversion is exact.
    let pow2 = i32x4_shl(i32x4_add(i32x4_relaxed_trunc_f32x4(n), i32x4_splat(127)), 23);
    f32x4_mul(e, pow2)
}

/// erf's numerator (odd, over x) and denominator (even) polynomials in x², highest power first:
/// Eigen's `generic_fast_erf_float` rational approximation on [-4, 4] (|error| ≤ 5e-7).
const ERF_P: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_600_1e-3,
    -1.609_603_3e-2,
];
const ERF_Q: [f32; 5] = [
    -1.456_607_2e-5,
    -2.133_740_6e-4,
    -1.682_827e-3,
    -7.373_329_2e-3,
    -1.426_473_9e-2,
];

/// GELU(x) = 0.5 x (1 + erf(x / √2)), erf by a rational polynomial (no exp, one division).
#[inline(never)]
pub fn gelu_in_place(xs: &mut [f32]) {
    let chunks = xs.len() / 4;
    for c in 0..chunks {
        let ptr = xs[c * 4..].as_mut_ptr() as *mut v128;
        // SAFETY: c * 4 + 4 <= xs.len(); unaligned v128 loads and stores are allowed in WASM.
        let x = unsafe { v128_load(ptr) };
        let z = f32x4_mul(x, f32x4_splat(core::f32::consts::FRAC_1_SQRT_2));
        // Beyond ±4, erf is ±1 in f32.
        let z = f32x4_pmin(f32x4_pmax(z, f32x4_splat(-4.0)), f32x4_splat(4.0));
        let z2 = f32x4_mul(z, z);
        let mut p = f32x4_splat(ERF_P[0]);
        for &k in &ERF_P[1..] {
            p = f32x4_relaxed_madd(p, z2, f32x4_splat(k));
        }
        let mut q = f32x4_splat(ERF_Q[0]);
        for &k in &ERF_Q[1..] {
            q = f32x4_relaxed_madd(q, z2, f32x4_splat(k));
        }
        let erf = f32x4_div(f32x4_mul(p, z), q);
        // 0.5 x (1 + erf) = x (0.5 + 0.5 erf)
        let half = f32x4_splat(0.5);
        let y = f32x4_mul(x, f32x4_relaxed_madd(half, erf, half));
        unsafe { v128_store(ptr, y) };
    }
    for x in xs[chunks * 4..].iter_mut() {
        *x = gelu1(*x);
    }
}

fn gelu1(x: f32) -> f32 {
    let mut buf = [x, 0.0, 0.0, 0.0];
    gelu_in_place(&mut buf[..4]);
    buf[0]
}

#[inline(always)]
pub fn hsum(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v)
        + f32x4_extract_lane::<1>(v)
        + f32x4_extract_lane::<2>(v)
        + f32x4_extract_lane::<3>(v)
}

/// Sum of a slice whose length is a multiple of 4.
#[inline(always)]
pub fn sum4(xs: &[f32]) -> f32 {
    let mut acc = f32x4_splat(0.0);
    for c in xs.chunks_exact(4) {
        acc = f32x4_add(acc, unsafe { v128_load(c.as_ptr() as *const v128) });
    }
    hsum(acc)
}

/// LayerNorm of each `width`-wide row of `x`, in place (width a multiple of 4).
#[inline(never)]
pub fn layer_norm(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(width) {
        let mean = sum4(row) / width as f32;
        let m = f32x4_splat(mean);
        let mut var = f32x4_splat(0.0);
        for c in row.chunks_exact(4) {
            let d = f32x4_sub(unsafe { v128_load(c.as_ptr() as *const v128) }, m);
            var = f32x4_add(var, f32x4_mul(d, d));
        }
        let inv = 1.0 / (hsum(var) / width as f32 + eps).sqrt();
        let inv = f32x4_splat(inv);
        for ((c, g), b) in row
            .chunks_exact_mut(4)
            .zip(gamma.chunks_exact(4))
            .zip(beta.chunks_exact(4))
        {
            let p = c.as_mut_ptr() as *mut v128;
            unsafe {
                let d = f32x4_mul(f32x4_sub(v128_load(p), m), inv);
                let g = v128_load(g.as_ptr() as *const v128);
                let b = v128_load(b.as_ptr() as *const v128);
                v128_store(p, f32x4_add(f32x4_mul(d, g), b));
            }
        }
    }
}

/// `x += y`, element-wise (lengths a multiple of 4).
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.chunks_exact_mut(4).zip(y.chunks_exact(4)) {
        let p = a.as_mut_ptr() as *mut v128;
        unsafe {
            v128_store(
                p,
                f32x4_add(v128_load(p), v128_load(b.as_ptr() as *const v128)),
            )
        };
    }
}

/// `y += a · x` (lengths a multiple of 4).
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let a = f32x4_splat(a);
    for (yc, xc) in y.chunks_exact_mut(4).zip(x.chunks_exact(4)) {
        let p = yc.as_mut_ptr() as *mut v128;
        unsafe {
            v128_store(
                p,
                f32x4_relaxed_madd(a, v128_load(xc.as_ptr() as *const v128), v128_load(p)),
            )
        };
    }
}
