//! Multi-head self-attention over one sequence's n tokens, fp32 (no mask: there is no padding).
//!
//! Keys are transposed per head so that scores come out 4 keys at a time and values are added 4
//! dims at a time, with splats and no horizontal sums.

use crate::math::exp4;
use core::arch::wasm32::*;

/// `qkv` [n, 3h] (rows [q | k | v], head-major within each) → `out` [n, h].
/// `kt` ≥ head_dim × n4 and `p` ≥ 4 × n4 floats of scratch, n4 = n rounded up to 4.
#[inline(never)]
pub fn attention(
    qkv: &[f32],
    n: usize,
    hidden: usize,
    heads: usize,
    out: &mut [f32],
    kt: &mut [f32],
    p: &mut [f32],
) {
    let hd = hidden / heads;
    let n4 = n.div_ceil(4) * 4;
    let scale = 1.0 / (hd as f32).sqrt();
    let stride = 3 * hidden;
    for h in 0..heads {
        let (qo, ko, vo) = (h * hd, hidden + h * hd, 2 * hidden + h * hd);
        for d in 0..hd {
            let row = &mut kt[d * n4..(d + 1) * n4];
            for j in 0..n {
                row[j] = qkv[j * stride + ko + d];
            }
            for x in row[n..].iter_mut() {
                *x = 0.0;
            }
        }
        // Scores for 4 queries × 4 keys at a time: four independent FMA chains share each key load
        // (one chain per query would stall on the add's latency across the head dims).
        let mut i0 = 0;
        while i0 < n {
            let qs = (n - i0).min(4);
            let q = unsafe { qkv.as_ptr().add(i0 * stride + qo) };
            match qs {
                4 => scores::<4>(q, stride, kt, n4, hd, scale, p),
                3 => scores::<3>(q, stride, kt, n4, hd, scale, p),
                2 => scores::<2>(q, stride, kt, n4, hd, scale, p),
                _ => scores::<1>(q, stride, kt, n4, hd, scale, p),
            }
            for qi in 0..qs {
                softmax(&mut p[qi * n4..(qi + 1) * n4], n);
            }
            // SAFETY: rows i0..i0+qs of `out` exist; each head's slice is hd floats from h·hd.
            let o = unsafe { out.as_mut_ptr().add(i0 * hidden + h * hd) };
            let v = &qkv[vo..];
            match qs {
                4 => mix_queries::<4>(p, n4, n, v, stride, hd, o, hidden),
                3 => mix_queries::<3>(p, n4, n, v, stride, hd, o, hidden),
                2 => mix_queries::<2>(p, n4, n, v, stride, hd, o, hidden),
                _ => mix_queries::<1>(p, n4, n, v, stride, hd, o, hidden),
            }
            i0 += 4;
        }
    }
}

/// Scores of Q queries (rows `stride` apart from `q`) against all keys, scaled, into `p` [Q][n4].
/// Two key blocks at a time: Q × 2 independent FMA chains hide the FMA latency.
#[inline(never)]
fn scores<const Q: usize>(
    q: *const f32,
    stride: usize,
    kt: &[f32],
    n4: usize,
    hd: usize,
    scale: f32,
    p: &mut [f32],
) {
    let blocks = n4 / 4;
    let mut jb = 0;
    while jb + 2 <= blocks {
        score_tile::<Q, 2>(q, stride, kt, n4, hd, scale, p, jb);
        jb += 2;
    }
    if jb < blocks {
        score_tile::<Q, 1>(q, stride, kt, n4, hd, scale, p, jb);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn score_tile<const Q: usize, const K: usize>(
    q: *const f32,
    stride: usize,
    kt: &[f32],
    n4: usize,
    hd: usize,
    scale: f32,
    p: &mut [f32],
    jb: usize,
) {
    let mut s = [[f32x4_splat(0.0); K]; Q];
    let k = unsafe { kt.as_ptr().add(jb * 4) };
    for d in 0..hd {
        // SAFETY: d < hd, (jb + K) * 4 <= n4, and kt holds hd × n4 floats; q rows hold hd floats.
        let mut kv = [f32x4_splat(0.0); K];
        for (b, v) in kv.iter_mut().enumerate() {
            *v = unsafe { v128_load(k.add(d * n4 + b * 4) as *const v128) };
        }
        for (qi, acc) in s.iter_mut().enumerate() {
            let qd = f32x4_splat(unsafe { *q.add(qi * stride + d) });
            for b in 0..K {
                acc[b] = f32x4_relaxed_madd(qd, kv[b], acc[b]);
            }
        }
    }
    for (qi, acc) in s.iter().enumerate() {
        for (b, a) in acc.iter().enumerate() {
            let at = qi * n4 + (jb + b) * 4;
            unsafe {
                v128_store(
                    p.as_mut_ptr().add(at) as *mut v128,
                    f32x4_mul(*a, f32x4_splat(scale)),
                )
            };
        }
    }
}

/// Softmax of one query's scores `p[..n]` in place (the padding lanes up to `p.len()` become 0).
#[inline(never)]
fn softmax(p: &mut [f32], n: usize) {
    let n4 = p.len();
    for x in p[n..n4].iter_mut() {
        *x = f32::NEG_INFINITY;
    }
    let mut mx = f32x4_splat(f32::NEG_INFINITY);
    for c in p.chunks_exact(4) {
        mx = f32x4_pmax(mx, unsafe { v128_load(c.as_ptr() as *const v128) });
    }
    let mx = f32x4_extract_lane::<0>(mx)
        .max(f32x4_extract_lane::<1>(mx))
        .max(f32x4_extract_lane::<2>(mx).max(f32x4_extract_lane::<3>(mx)));
    let m = f32x4_splat(mx);
    let mut total = f32x4_splat(0.0);
    for jb in 0..n4 / 4 {
        let ptr = unsafe { p.as_mut_ptr().add(jb * 4) as *mut v128 };
        let e = exp4(f32x4_sub(unsafe { v128_load(ptr) }, m));
        // exp4 clamps, so the padding lanes (-inf) would give e^-80 rather than 0: zero them.
        let e = if (jb + 1) * 4 > n {
            mask_tail(e, n - jb * 4)
        } else {
            e
        };
        total = f32x4_add(total, e);
        unsafe { v128_store(ptr, e) };
    }
    let inv = f32x4_splat(1.0 / crate::math::hsum(total));
    for c in p.chunks_exact_mut(4) {
        let ptr = c.as_mut_ptr() as *mut v128;
        unsafe { v128_store(ptr, f32x4_mul(v128_load(ptr), inv)) };
    }
}

/// `o_q = Σ_j p_q[j] V_j` for Q queries (probability rows `n4` apart in `p`, outputs `hidden`
/// apart from `o`), two 4-dim groups at a time: each V load serves Q queries.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn mix_queries<const Q: usize>(
    p: &[f32],
    n4: usize,
    n: usize,
    v: &[f32],
    stride: usize,
    hd: usize,
    o: *mut f32,
    hidden: usize,
) {
    let groups = hd / 4;
    let mut g0 = 0;
    while g0 + 2 <= groups {
        mix::<Q, 2>(p, n4, n, v, stride, g0, o, hidden);
        g0 += 2;
    }
    if g0 < groups {
        mix::<Q, 1>(p, n4, n, v, stride, g0, o, hidden);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn mix<const Q: usize, const G: usize>(
    p: &[f32],
    n4: usize,
    n: usize,
    v: &[f32],
    stride: usize,
    g0: usize,
    o: *mut f32,
    hidden: usize,
) {
    let mut acc = [[f32x4_splat(0.0); G]; Q];
    let pp = p.as_ptr();
    for j in 0..n {
        // SAFETY: row j of V holds head_dim ≥ 4(g0 + G) floats from here; p holds Q rows of n4.
        let row = unsafe { v.as_ptr().add(j * stride + g0 * 4) };
        let mut vs = [f32x4_splat(0.0); G];
        for (g, x) in vs.iter_mut().enumerate() {
            *x = unsafe { v128_load(row.add(g * 4) as *const v128) };
        }
        for (q, acc_q) in acc.iter_mut().enumerate() {
            let pj = f32x4_splat(unsafe { *pp.add(q * n4 + j) });
            for g in 0..G {
                acc_q[g] = f32x4_relaxed_madd(pj, vs[g], acc_q[g]);
            }
        }
    }
    for (q, acc_q) in acc.iter().enumerate() {
        for (g, a) in acc_q.iter().enumerate() {
            unsafe { v128_store(o.add(q * hidden + (g0 + g) * 4) as *mut v128, *a) };
        }
    }
}

#[inline(always)]
fn mask_tail(e: v128, live: usize) -> v128 {
    let lanes = i32x4(0, 1, 2, 3);
    let keep = i32x4_lt(lanes, i32x4_splat(live as i32));
    v128_and(e, keep)
}
