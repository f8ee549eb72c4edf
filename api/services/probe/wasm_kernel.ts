// The dense objective with its two matrix products in our WASM SIMD kernel
// (wasm/logreg_kernel.wat): X is copied once per fit into the kernel's memory, padded (rows to a
// multiple of 4, dims and classes to even); each evaluation copies W in, runs `scores`, does the softmax here, runs `gradw`.
// Parameters are class-major (W as K × d, then b), like kernels.ts's blocked JS objective.
import type { Matrix } from "./matrix";

type KernelExports = {
  memory: WebAssembly.Memory;
  scores(x: number, w: number, z: number, n: number, dp: number, kp: number): void;
  gradw(x: number, g: number, o: number, n: number, dp: number, kp: number): void;
};

let kernelModule: WebAssembly.Module | null = null;

/**
 * Hands the compiled kernel over: a `.wasm` import in Workers (workerd compiles no WASM from bytes
 * at run time), `new WebAssembly.Module(bytes)` under Node.
 */
export function useWasmKernel(module: WebAssembly.Module | null) {
  kernelModule = module;
}

/** Largest padded X the kernel takes (it holds a copy next to the JS one, in a 128 MB isolate). */
export const WASM_MAX_X_BYTES = 48 * 1024 * 1024;

const even = (v: number) => v + (v & 1);

export function wasmObjective(X: Matrix, y: Int32Array, K: number, lambda: number) {
  if (!kernelModule) return null;
  const { rows: n, cols: d } = X;
  const np = (n + 3) & ~3;
  const dp = even(d);
  const kp = even(K);
  const xBytes = np * dp * 8;
  if (xBytes > WASM_MAX_X_BYTES) return null;
  const wOff = 0;
  const xOff = kp * dp * 8;
  const zOff = xOff + xBytes;
  const oOff = zOff + np * kp * 8;
  const total = oOff + kp * dp * 8;
  const k = new WebAssembly.Instance(kernelModule, {}).exports as unknown as KernelExports;
  const pages = Math.ceil(total / 65536) - k.memory.buffer.byteLength / 65536;
  if (pages > 0) k.memory.grow(pages);
  const mem = new Float64Array(k.memory.buffer);
  const W = mem.subarray(wOff / 8, xOff / 8);
  const Z = mem.subarray(zOff / 8, oOff / 8);
  const O = mem.subarray(oOff / 8, total / 8);
  if (dp === d) mem.set(X.data, xOff / 8);
  else for (let i = 0; i < n; i++) mem.set(X.data.subarray(i * d, (i + 1) * d), xOff / 8 + i * dp);

  return (theta: Float64Array, grad: Float64Array): number => {
    const bOff = K * d;
    for (let c = 0; c < K; c++) W.set(theta.subarray(c * d, (c + 1) * d), c * dp);
    k.scores(xOff, wOff, zOff, np, dp, kp);
    let loss = 0;
    for (let c = 0; c < K; c++) grad[bOff + c] = 0;
    for (let i = 0; i < n; i++) {
      const off = i * kp;
      let max = -Infinity;
      for (let c = 0; c < K; c++) {
        const s = (Z[off + c] as number) + (theta[bOff + c] as number);
        Z[off + c] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let c = 0; c < K; c++) {
        const e = Math.exp((Z[off + c] as number) - max);
        Z[off + c] = e;
        sum += e;
      }
      const yi = y[i] as number;
      loss += Math.log(sum) - Math.log(Z[off + yi] as number);
      const inv = 1 / sum;
      for (let c = 0; c < K; c++) Z[off + c] = (Z[off + c] as number) * inv;
      Z[off + yi] = (Z[off + yi] as number) - 1;
      for (let c = 0; c < K; c++) grad[bOff + c] = (grad[bOff + c] as number) + (Z[off + c] as number);
      for (let c = K; c < kp; c++) Z[off + c] = 0;
    }
    if (np > n) Z.fill(0, n * kp, np * kp);
    O.fill(0);
    k.gradw(xOff, zOff, oOff, np, dp, kp);
    let reg = 0;
    for (let c = 0; c < K; c++) {
      for (let j = 0; j < d; j++) {
        const w = theta[c * d + j] as number;
        reg += w * w;
        grad[c * d + j] = (O[c * dp + j] as number) / n + lambda * w;
      }
    }
    for (let c = 0; c < K; c++) grad[bOff + c] = (grad[bOff + c] as number) / n;
    return loss / n + 0.5 * lambda * reg;
  };
}
