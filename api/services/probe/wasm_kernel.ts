// The dense logistic-regression objective: its two matrix products run in our WASM SIMD kernel
// (wasm/logreg_kernel.wat), the softmax and the penalty here (softmax.ts, shared with the sparse
// objective). Parameters are class-major (W as K × d, then b) so each class's weights are
// contiguous for the kernel; `classMajorToRowMajor` turns them into the d × K layout models store.
// This is the only dense kernel: tests/probe_reference.ts holds the plain JS one it is checked against.
import type { Matrix } from "./matrix";
import { penalize, softmaxGradient } from "./softmax";

export type KernelExports = {
  memory: WebAssembly.Memory;
  scores(x: number, w: number, z: number, n: number, dp: number, kp: number): void;
  gradw(x: number, g: number, o: number, n: number, dp: number, kp: number): void;
};

let kernelModule: WebAssembly.Module | null = null;

/**
 * A fresh instance of the kernel (its own memory).
 *
 * @throws Error when no kernel was handed over with `useWasmKernel` (import wasm_module.ts).
 */
export function kernelInstance(): KernelExports {
  if (!kernelModule) {
    throw new Error(
      "the logistic-regression WASM kernel is not loaded: import api/services/probe/wasm_module (Workers), or call useWasmKernel(new WebAssembly.Module(bytes of wasm/logreg_kernel.wasm)) (Node)",
    );
  }
  return new WebAssembly.Instance(kernelModule, {}).exports as unknown as KernelExports;
}

/**
 * Hands the compiled kernel over: wasm_module.ts does it in Workers (a `.wasm` import; workerd
 * compiles no WASM from bytes at run time); Node code passes `new WebAssembly.Module(bytes)` of
 * the committed `wasm/logreg_kernel.wasm`.
 */
export function useWasmKernel(module: WebAssembly.Module | null) {
  kernelModule = module;
}

/**
 * Largest padded X the kernel keeps resident (a copy next to the JS one, in a 128 MB isolate).
 * A larger X streams through a buffer of `WASM_CHUNK_BYTES` on every evaluation instead.
 */
export const WASM_MAX_X_BYTES = 48 * 1024 * 1024;
export const WASM_CHUNK_BYTES = 4 * 1024 * 1024;

const even = (v: number) => v + (v & 1);

/**
 * The objective and its gradient (class-major) for L-BFGS. X is copied into the kernel's memory
 * once per fit, padded (rows to a multiple of 4, dims and classes to even), when it fits
 * `maxResidentBytes`; otherwise blocks of rows (`chunkBytes` each, at least 4 rows) are copied in
 * per evaluation.
 *
 * @throws Error when no kernel was handed over with `useWasmKernel` (import wasm_module.ts).
 */
export function denseObjective(
  X: Matrix,
  y: Int32Array,
  K: number,
  lambda: number,
  opts: { maxResidentBytes?: number; chunkBytes?: number } = {},
) {
  const { rows: n, cols: d } = X;
  const dp = even(d);
  const kp = even(K);
  const np = (n + 3) & ~3;
  const resident = np * dp * 8 <= (opts.maxResidentBytes ?? WASM_MAX_X_BYTES);
  const block = resident ? np : Math.max(4, Math.floor((opts.chunkBytes ?? WASM_CHUNK_BYTES) / (dp * 8)) & ~3);
  const wOff = 0;
  const xOff = kp * dp * 8;
  const zOff = xOff + block * dp * 8;
  const oOff = zOff + block * kp * 8;
  const total = oOff + kp * dp * 8;
  const k = kernelInstance();
  const pages = Math.ceil(total / 65536) - k.memory.buffer.byteLength / 65536;
  if (pages > 0) k.memory.grow(pages);
  const mem = new Float64Array(k.memory.buffer);
  const W = mem.subarray(wOff / 8, xOff / 8);
  const Z = mem.subarray(zOff / 8, oOff / 8);
  const O = mem.subarray(oOff / 8, total / 8);
  // Rows [start, start + rows) into the X buffer; padding columns stay zero (never written).
  const load = (start: number, rows: number) => {
    if (dp === d) mem.set(X.data.subarray(start * d, (start + rows) * d), xOff / 8);
    else
      for (let i = 0; i < rows; i++) mem.set(X.data.subarray((start + i) * d, (start + i + 1) * d), xOff / 8 + i * dp);
  };
  if (resident) load(0, n);

  return (theta: Float64Array, grad: Float64Array): number => {
    const bOff = K * d;
    for (let c = 0; c < K; c++) W.set(theta.subarray(c * d, (c + 1) * d), c * dp);
    for (let c = 0; c < K; c++) grad[bOff + c] = 0;
    O.fill(0);
    let loss = 0;
    for (let start = 0; start < n; start += block) {
      const rows = Math.min(block, n - start);
      const rp = (rows + 3) & ~3;
      if (!resident) load(start, rows);
      k.scores(xOff, wOff, zOff, rp, dp, kp);
      for (let i = 0; i < rows; i++) {
        const off = i * kp;
        for (let c = 0; c < K; c++) Z[off + c] = (Z[off + c] as number) + (theta[bOff + c] as number);
        loss += softmaxGradient(Z, off, K, y[start + i] as number);
        for (let c = 0; c < K; c++) grad[bOff + c] = (grad[bOff + c] as number) + (Z[off + c] as number);
        for (let c = K; c < kp; c++) Z[off + c] = 0;
      }
      // Padding rows (and, when streaming, stale rows of the previous block) weigh nothing.
      if (rp > rows) Z.fill(0, rows * kp, rp * kp);
      k.gradw(xOff, zOff, oOff, rp, dp, kp);
    }
    for (let c = 0; c < K; c++) grad.set(O.subarray(c * dp, c * dp + d), c * d);
    return penalize(theta, grad, bOff, K, n, lambda, loss);
  };
}

/** Class-major parameters (K × d, then b) to the d × K layout models are stored in. */
export function classMajorToRowMajor(theta: Float64Array, d: number, K: number): Float64Array {
  const W = new Float64Array(d * K);
  for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) W[j * K + k] = theta[k * d + j] as number;
  return W;
}
