//! selfsup's int8 encoder for BERT-family text models, in WASM SIMD (decision 0011).
//!
//! The Worker copies a `model.int8.kernel` file (format: docs/decisions/0011-wasm-kernels.md,
//! written by `selfsup_trainer/text/kernel.py`) into this module's memory, then embeds one
//! sequence per call. One sequence at a time means no padding and no batch-mates, so an input's
//! vector is the same however it was batched; the GEMMs are still wide (n tokens × the weights).

// The ss_* exports are the boundary with kernel.ts, which passes only pointers ss_alloc returned
// (and lengths it allocated): JS cannot call an `unsafe fn` any differently.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod attention;
mod gemm;
mod math;

use gemm::Linear;
use std::alloc::{alloc, dealloc, Layout};

const HEADER: usize = 64;

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    ln1: (*const f32, *const f32),
    ffn1: Linear,
    ffn2: Linear,
    ln2: (*const f32, *const f32),
}

pub struct Model {
    hidden: usize,
    heads: usize,
    inter: usize,
    vocab: usize,
    max_pos: usize,
    pre_ln: bool,
    cls: bool,
    eps: f32,
    word_q: *const i8,
    word_scale: *const f32,
    pos: *const f32,
    emb_ln: (*const f32, *const f32),
    layers: Vec<Layer>,
    final_ln: Option<(*const f32, *const f32)>,
    /// The trainer's post-processing (text/postprocess.py): a mean to subtract, then maybe a matrix.
    post_mean: Option<*const f32>,
    post_matrix: Option<*const f32>,
    scratch: Scratch,
    /// Tokens of the sequence in progress (`begin` .. `finish`), 0 when none.
    n: usize,
}

#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    t: Vec<f32>,
    qkv: Vec<f32>,
    ffn: Vec<f32>,
    att: Vec<f32>,
    kt: Vec<f32>,
    p: Vec<f32>,
    q: Vec<u8>,
    rows: Vec<(f32, f32)>,
}

/// Walks the blob in the format's order, handing out 16-byte-aligned sections.
struct Cursor {
    base: *const u8,
    at: usize,
    len: usize,
}

impl Cursor {
    fn take(&mut self, bytes: usize) -> Option<*const u8> {
        self.at = self.at.div_ceil(16) * 16;
        if self.at + bytes > self.len {
            return None;
        }
        let p = unsafe { self.base.add(self.at) };
        self.at += bytes;
        Some(p)
    }
    fn f32s(&mut self, n: usize) -> Option<*const f32> {
        self.take(n * 4).map(|p| p as *const f32)
    }
    fn ln(&mut self, n: usize) -> Option<(*const f32, *const f32)> {
        Some((self.f32s(n)?, self.f32s(n)?))
    }
    fn linear(&mut self, out: usize, inp: usize) -> Option<Linear> {
        Some(Linear {
            out,
            inp,
            packed: self.take(out * inp)?,
            scale: self.f32s(out)?,
            colsum: self.take(out * 4)? as *const i32,
            bias: self.f32s(out)?,
        })
    }
}

fn u32_at(blob: &[u8], at: usize) -> usize {
    u32::from_le_bytes([blob[at], blob[at + 1], blob[at + 2], blob[at + 3]]) as usize
}

fn parse(base: *const u8, len: usize) -> Option<Model> {
    if len < HEADER || !(base as usize).is_multiple_of(16) {
        return None;
    }
    let blob = unsafe { core::slice::from_raw_parts(base, len) };
    if &blob[0..4] != b"SSK1" {
        return None;
    }
    let (layers, hidden, heads, inter) = (
        u32_at(blob, 4),
        u32_at(blob, 8),
        u32_at(blob, 12),
        u32_at(blob, 16),
    );
    let (vocab, max_pos, norm, pooling) = (
        u32_at(blob, 20),
        u32_at(blob, 24),
        u32_at(blob, 28),
        u32_at(blob, 32),
    );
    let eps = f32::from_bits(u32_at(blob, 36) as u32);
    let post = u32_at(blob, 40);
    let shape_ok = layers > 0
        && heads > 0
        && hidden % heads == 0
        && (hidden / heads) % 4 == 0
        && hidden / heads <= 128
        && hidden % 4 == 0
        && inter % 4 == 0
        && vocab > 0
        && max_pos > 0
        && norm <= 1
        && pooling <= 1
        && post <= 2;
    if !shape_ok {
        return None;
    }
    let mut c = Cursor {
        base,
        at: HEADER,
        len,
    };
    let word_q = c.take(vocab * hidden)? as *const i8;
    let word_scale = c.f32s(vocab)?;
    let pos = c.f32s(max_pos * hidden)?;
    let emb_ln = c.ln(hidden)?;
    let mut ls = Vec::with_capacity(layers);
    for _ in 0..layers {
        ls.push(Layer {
            qkv: c.linear(3 * hidden, hidden)?,
            attn_out: c.linear(hidden, hidden)?,
            ln1: c.ln(hidden)?,
            ffn1: c.linear(inter, hidden)?,
            ffn2: c.linear(hidden, inter)?,
            ln2: c.ln(hidden)?,
        });
    }
    let final_ln = if norm == 1 { Some(c.ln(hidden)?) } else { None };
    let post_mean = if post >= 1 {
        Some(c.f32s(hidden)?)
    } else {
        None
    };
    let post_matrix = if post == 2 {
        Some(c.f32s(hidden * hidden)?)
    } else {
        None
    };
    Some(Model {
        hidden,
        heads,
        inter,
        vocab,
        max_pos,
        pre_ln: norm == 1,
        cls: pooling == 1,
        eps,
        word_q,
        word_scale,
        pos,
        emb_ln,
        layers: ls,
        final_ln,
        post_mean,
        post_matrix,
        scratch: Scratch::default(),
        n: 0,
    })
}

fn slice<'a>(p: *const f32, n: usize) -> &'a [f32] {
    unsafe { core::slice::from_raw_parts(p, n) }
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

impl Model {
    /// Embeds one sequence: `begin`, every layer, `finish`. False on bad ids.
    fn embed(&mut self, ids: &[u32], out: &mut [f32]) -> bool {
        if !self.begin(ids) {
            return false;
        }
        for i in 0..self.layers.len() {
            self.layer(i);
        }
        self.finish(out)
    }

    /// Token + position embeddings and their LayerNorm into the residual stream. False (and no
    /// sequence in progress) when `ids` is empty, longer than max_position or outside the vocabulary.
    fn begin(&mut self, ids: &[u32]) -> bool {
        let (h, n) = (self.hidden, ids.len());
        self.n = 0;
        if n == 0 || n > self.max_pos || ids.iter().any(|&t| t as usize >= self.vocab) {
            return false;
        }
        let n4 = n.div_ceil(4) * 4;
        let s = &mut self.scratch;
        grow(&mut s.x, n * h);
        grow(&mut s.t, n * h);
        grow(&mut s.att, n * h);
        grow(&mut s.qkv, n * 3 * h);
        grow(&mut s.ffn, n * self.inter);
        grow(&mut s.kt, (h / self.heads) * n4);
        grow(&mut s.p, 4 * n4);
        grow(&mut s.q, n * self.inter.max(h));
        grow(&mut s.rows, n);

        for (i, &t) in ids.iter().enumerate() {
            let t = t as usize;
            let scale = unsafe { *self.word_scale.add(t) };
            let w = unsafe { core::slice::from_raw_parts(self.word_q.add(t * h), h) };
            let pos = slice(unsafe { self.pos.add(i * h) }, h);
            for d in 0..h {
                s.x[i * h + d] = w[d] as f32 * scale + pos[d];
            }
        }
        let x = &mut s.x[..n * h];
        math::layer_norm(
            x,
            h,
            slice(self.emb_ln.0, h),
            slice(self.emb_ln.1, h),
            self.eps,
        );
        self.n = n;
        true
    }

    /// Transformer layer `i` over the sequence in progress.
    fn layer(&mut self, i: usize) {
        let (h, n) = (self.hidden, self.n);
        let s = &mut self.scratch;
        let l = &self.layers[i];
        let ln = |buf: &mut [f32], p: (*const f32, *const f32), eps| {
            math::layer_norm(buf, h, slice(p.0, h), slice(p.1, h), eps)
        };
        // Attention block. Pre-LN normalises a copy; post-LN normalises the residual sum.
        let input: &[f32] = if self.pre_ln {
            s.t[..n * h].copy_from_slice(&s.x[..n * h]);
            ln(&mut s.t[..n * h], l.ln1, self.eps);
            &s.t[..n * h]
        } else {
            &s.x[..n * h]
        };
        gemm::linear(&l.qkv, input, n, &mut s.qkv, &mut s.q, &mut s.rows);
        attention::attention(&s.qkv, n, h, self.heads, &mut s.att, &mut s.kt, &mut s.p);
        gemm::linear(
            &l.attn_out,
            &s.att[..n * h],
            n,
            &mut s.t,
            &mut s.q,
            &mut s.rows,
        );
        math::add_in_place(&mut s.x[..n * h], &s.t[..n * h]);
        if !self.pre_ln {
            ln(&mut s.x[..n * h], l.ln1, self.eps);
        }
        // MLP block.
        let input: &[f32] = if self.pre_ln {
            s.t[..n * h].copy_from_slice(&s.x[..n * h]);
            ln(&mut s.t[..n * h], l.ln2, self.eps);
            &s.t[..n * h]
        } else {
            &s.x[..n * h]
        };
        gemm::linear(&l.ffn1, input, n, &mut s.ffn, &mut s.q, &mut s.rows);
        math::gelu_in_place(&mut s.ffn[..n * self.inter]);
        gemm::linear(
            &l.ffn2,
            &s.ffn[..n * self.inter],
            n,
            &mut s.t,
            &mut s.q,
            &mut s.rows,
        );
        math::add_in_place(&mut s.x[..n * h], &s.t[..n * h]);
        if !self.pre_ln {
            ln(&mut s.x[..n * h], l.ln2, self.eps);
        }
    }

    /// Final LayerNorm, pooling, post-processing and L2 into `out`; ends the sequence.
    fn finish(&mut self, out: &mut [f32]) -> bool {
        let (h, n) = (self.hidden, self.n);
        if n == 0 {
            return false;
        }
        self.n = 0;
        let s = &mut self.scratch;
        if let Some(f) = self.final_ln {
            math::layer_norm(&mut s.x[..n * h], h, slice(f.0, h), slice(f.1, h), self.eps);
        }

        let out = &mut out[..h];
        if self.cls {
            out.copy_from_slice(&s.x[..h]);
        } else {
            out.iter_mut().for_each(|o| *o = 0.0);
            for row in s.x[..n * h].chunks_exact(h) {
                math::add_in_place(out, row);
            }
            out.iter_mut().for_each(|o| *o /= n as f32);
        }
        l2_normalize(out);
        if let Some(mean) = self.post_mean {
            for (o, m) in out.iter_mut().zip(slice(mean, h)) {
                *o -= m;
            }
            if let Some(matrix) = self.post_matrix {
                let z = &mut s.t[..h];
                z.copy_from_slice(out);
                out.iter_mut().for_each(|o| *o = 0.0);
                for (i, &zi) in z.iter().enumerate() {
                    math::axpy(out, zi, slice(unsafe { matrix.add(i * h) }, h));
                }
            }
            l2_normalize(out);
        }
        true
    }
}

fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

// ---- the module's exports (the Worker's kernel.ts calls these) ----

/// 16-byte-aligned bytes for the caller to fill (the model blob, ids, the output vector).
#[no_mangle]
pub extern "C" fn ss_alloc(len: usize) -> *mut u8 {
    match Layout::from_size_align(len.max(1), 16) {
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => core::ptr::null_mut(),
    }
}

#[no_mangle]
pub extern "C" fn ss_free(ptr: *mut u8, len: usize) {
    if let Ok(layout) = Layout::from_size_align(len.max(1), 16) {
        unsafe { dealloc(ptr, layout) }
    }
}

/// A model over a blob in this memory (kept alive by the caller), or 0 when the blob is malformed.
#[no_mangle]
pub extern "C" fn ss_model_new(blob: *const u8, len: usize) -> *mut Model {
    match parse(blob, len) {
        Some(m) => Box::into_raw(Box::new(m)),
        None => core::ptr::null_mut(),
    }
}

#[no_mangle]
pub extern "C" fn ss_model_free(model: *mut Model) {
    if !model.is_null() {
        drop(unsafe { Box::from_raw(model) });
    }
}

#[no_mangle]
pub extern "C" fn ss_model_dims(model: *const Model) -> usize {
    unsafe { (*model).hidden }
}

#[no_mangle]
pub extern "C" fn ss_model_layers(model: *const Model) -> usize {
    unsafe { (*model).layers.len() }
}

/// Starts a sequence of `n` token ids for `ss_layer` and `ss_finish` (so the caller can pause
/// between layers); 0 on success, 1 on bad ids as for `ss_embed`.
#[no_mangle]
pub extern "C" fn ss_begin(model: *mut Model, ids: *const u32, n: usize) -> u32 {
    let m = unsafe { &mut *model };
    let ids = unsafe { core::slice::from_raw_parts(ids, n) };
    u32::from(!m.begin(ids))
}

/// Runs layer `i` of the sequence in progress; 1 when there is none or `i` is out of range.
#[no_mangle]
pub extern "C" fn ss_layer(model: *mut Model, i: usize) -> u32 {
    let m = unsafe { &mut *model };
    if m.n == 0 || i >= m.layers.len() {
        return 1;
    }
    m.layer(i);
    0
}

/// Pools the sequence in progress into `out` (hidden floats); 1 when there is none.
#[no_mangle]
pub extern "C" fn ss_finish(model: *mut Model, out: *mut f32) -> u32 {
    let m = unsafe { &mut *model };
    let out = unsafe { core::slice::from_raw_parts_mut(out, m.hidden) };
    u32::from(!m.finish(out))
}

/// Embeds one sequence of `n` token ids into `out` (hidden floats). 0 on success, 1 on bad ids
/// (empty, longer than max_position, or outside the vocabulary).
#[no_mangle]
pub extern "C" fn ss_embed(model: *mut Model, ids: *const u32, n: usize, out: *mut f32) -> u32 {
    let m = unsafe { &mut *model };
    let ids = unsafe { core::slice::from_raw_parts(ids, n) };
    let out = unsafe { core::slice::from_raw_parts_mut(out, m.hidden) };
    if m.embed(ids, out) {
        0
    } else {
        1
    }
}
