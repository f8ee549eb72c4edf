//! `Y = X Wᵀ + b` with int8 weights (per output row) and 7-bit activations (per input row).
//!
//! Each input row gets its own asymmetric scale (min..max → 0..127), so a token's result never
//! depends on other tokens, other sequences or padding: the batch-invariance dynamic
//! per-tensor quantization (onnxruntime's) lacks. 7 bits, because `relaxed_dot_i8x16_i7x16`
//! (pmaddubsw on x86) is only exact when one operand's lanes have the top bit clear; 127 × 127 × 2
//! also stays below i16 saturation.
//!
//! Weights are packed by the exporter (kernel.py) in 16-byte blocks: 4 outputs × 4 inputs. A
//! splatted group of 4 activations dotted with one block adds 4 partial sums, one per output lane,
//! so accumulators never need a horizontal reduction.

use core::arch::wasm32::*;

/// A packed Linear inside the model blob.
pub struct Linear {
    pub out: usize,
    pub inp: usize,
    pub packed: *const u8,
    pub scale: *const f32,
    pub colsum: *const i32,
    pub bias: *const f32,
}

/// Quantizes each `inp`-wide row of `x` to u7 in `q`; returns per-row (step, min) in `rows`.
#[inline(never)]
pub fn quantize_rows(x: &[f32], inp: usize, q: &mut [u8], rows: &mut [(f32, f32)]) {
    for (r, row) in x.chunks_exact(inp).enumerate() {
        let mut lo = f32x4_splat(f32::INFINITY);
        let mut hi = f32x4_splat(f32::NEG_INFINITY);
        for c in row.chunks_exact(4) {
            let v = unsafe { v128_load(c.as_ptr() as *const v128) };
            lo = f32x4_pmin(lo, v);
            hi = f32x4_pmax(hi, v);
        }
        let mn = f32x4_extract_lane::<0>(lo)
            .min(f32x4_extract_lane::<1>(lo))
            .min(f32x4_extract_lane::<2>(lo).min(f32x4_extract_lane::<3>(lo)));
        let mx = f32x4_extract_lane::<0>(hi)
            .max(f32x4_extract_lane::<1>(hi))
            .max(f32x4_extract_lane::<2>(hi).max(f32x4_extract_lane::<3>(hi)));
        let step = if mx > mn { (mx - mn) / 127.0 } else { 1.0 };
        rows[r] = (step, mn);
        // A multiply by 1/step, not a divide (4× the throughput); kernel.py rounds the same way.
        let (m, inv) = (f32x4_splat(mn), f32x4_splat(1.0 / step));
        let out = &mut q[r * inp..(r + 1) * inp];
        let u7 = |c: &[f32]| {
            let v = unsafe { v128_load(c.as_ptr() as *const v128) };
            let u = f32x4_floor(f32x4_add(f32x4_mul(f32x4_sub(v, m), inv), f32x4_splat(0.5)));
            // Clamped to 0..127 first, so the one-instruction relaxed conversion is exact, and
            // pmin/pmax are plain minps/maxps (see math::exp4).
            i32x4_relaxed_trunc_f32x4(f32x4_pmin(
                f32x4_pmax(u, f32x4_splat(0.0)),
                f32x4_splat(127.0),
            ))
        };
        // 16 at a time through the saturating narrows (values are already 0..127).
        let whole = inp / 16 * 16;
        for (c, o) in row[..whole]
            .chunks_exact(16)
            .zip(out[..whole].chunks_exact_mut(16))
        {
            let lo = i16x8_narrow_i32x4(u7(&c[0..4]), u7(&c[4..8]));
            let hi = i16x8_narrow_i32x4(u7(&c[8..12]), u7(&c[12..16]));
            unsafe { v128_store(o.as_mut_ptr() as *mut v128, u8x16_narrow_i16x8(lo, hi)) };
        }
        for (c, o) in row[whole..]
            .chunks_exact(4)
            .zip(out[whole..].chunks_exact_mut(4))
        {
            let i = u7(c);
            o[0] = i32x4_extract_lane::<0>(i) as u8;
            o[1] = i32x4_extract_lane::<1>(i) as u8;
            o[2] = i32x4_extract_lane::<2>(i) as u8;
            o[3] = i32x4_extract_lane::<3>(i) as u8;
        }
    }
}

/// `y[n, out] = x[n, inp] Wᵀ + b`, using `q`/`rows` as scratch for the quantized input.
#[inline(never)]
pub fn linear(
    l: &Linear,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    q: &mut [u8],
    rows: &mut [(f32, f32)],
) {
    quantize_rows(&x[..n * l.inp], l.inp, q, rows);
    let blocks = l.out / 4;
    let mut ob = 0;
    while ob + 2 <= blocks {
        rows_for::<2>(l, ob, n, q, rows, y);
        ob += 2;
    }
    if ob < blocks {
        rows_for::<1>(l, ob, n, q, rows, y);
    }
}

// 3 × 2 tiles: 6 accumulators, 3 rows of 16 activation bytes, 2 weight blocks, the 1s and
// temporaries fit the 15 xmm registers V8 allocates. Measured in workerd (the runtime that
// matters; its memory accesses cost more than node 22's): 4 × 2 with a 4-byte splat load per
// group was 9% slower, 4 × 2 with 16-byte loads 3% (spills); in node 4 × 2 splats is fastest.
fn rows_for<const B: usize>(
    l: &Linear,
    ob: usize,
    n: usize,
    q: &[u8],
    rows: &[(f32, f32)],
    y: &mut [f32],
) {
    let mut r = 0;
    while r + 3 <= n {
        tile::<3, B>(l, ob, r, q, rows, y);
        r += 3;
    }
    match n - r {
        2 => tile::<2, B>(l, ob, r, q, rows, y),
        1 => tile::<1, B>(l, ob, r, q, rows, y),
        _ => {}
    }
}

/// R rows × 4B outputs: R·B i32x4 accumulators live in registers across the whole input width.
#[inline(always)]
fn tile<const R: usize, const B: usize>(
    l: &Linear,
    ob: usize,
    r0: usize,
    q: &[u8],
    rows: &[(f32, f32)],
    y: &mut [f32],
) {
    let k4 = l.inp / 4;
    let mut acc = [[i32x4_splat(0); B]; R];
    // V8 lowers relaxed_dot_i8x16_i7x16_add (without AVX-VNNI) to 5 instructions, two of them
    // rebuilding a splat of 1s every time. Spelled out as pmaddubsw + pmaddwd with the 1s held in
    // a register (black_box keeps LLVM from folding it back into a constant) it is 3.
    let ones = core::hint::black_box(i16x8_splat(1));
    let xq = q.as_ptr();
    // Activations 16 bytes (4 groups) per load, each group broadcast by a shuffle (pshufd): a
    // quarter of the loads of one 4-byte splat per group.
    let k16 = k4 / 4 * 4;
    let mut kb = 0;
    while kb < k16 {
        let mut xv = [i32x4_splat(0); R];
        for (r, x) in xv.iter_mut().enumerate() {
            *x = unsafe { v128_load(xq.add((r0 + r) * l.inp + kb * 4) as *const v128) };
        }
        macro_rules! group {
            ($g:literal) => {{
                let mut w = [i32x4_splat(0); B];
                for (b, wb) in w.iter_mut().enumerate() {
                    *wb = unsafe {
                        v128_load(l.packed.add(((ob + b) * k4 + kb + $g) * 16) as *const v128)
                    };
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let xs = i32x4_shuffle::<$g, $g, $g, $g>(xv[r], xv[r]);
                    for b in 0..B {
                        let pairs = i16x8_relaxed_dot_i8x16_i7x16(w[b], xs);
                        acc_r[b] = i32x4_add(acc_r[b], i32x4_dot_i16x8(pairs, ones));
                    }
                }
            }};
        }
        group!(0);
        group!(1);
        group!(2);
        group!(3);
        kb += 4;
    }
    for kb in k16..k4 {
        let mut w = [i32x4_splat(0); B];
        for (b, wb) in w.iter_mut().enumerate() {
            // SAFETY: the blob's Linear holds out/4 × in/4 blocks of 16 bytes (checked at load).
            *wb = unsafe { v128_load(l.packed.add(((ob + b) * k4 + kb) * 16) as *const v128) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xs = unsafe { v128_load32_splat(xq.add((r0 + r) * l.inp + kb * 4) as *const u32) };
            for b in 0..B {
                let pairs = i16x8_relaxed_dot_i8x16_i7x16(w[b], xs);
                acc_r[b] = i32x4_add(acc_r[b], i32x4_dot_i16x8(pairs, ones));
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let (step, mn) = rows[r0 + r];
        let (step, mn) = (f32x4_splat(step), f32x4_splat(mn));
        for (b, a) in acc_r.iter().enumerate() {
            let o = (ob + b) * 4;
            unsafe {
                let s = v128_load(l.scale.add(o) as *const v128);
                let cs = f32x4_convert_i32x4(v128_load(l.colsum.add(o) as *const v128));
                let bias = v128_load(l.bias.add(o) as *const v128);
                let v = f32x4_add(f32x4_mul(step, f32x4_convert_i32x4(*a)), f32x4_mul(mn, cs));
                let out = f32x4_add(f32x4_mul(s, v), bias);
                v128_store(y.as_mut_ptr().add((r0 + r) * l.out + o) as *mut v128, out);
            }
        }
    }
}
