// Our own int8 encoder for BERT-family text models (kernels/, decision 0011): what serves a
// version's int8 variant when the exporter wrote a `kernel` file for it. ORT-web stays for every
// other graph (images, series, heads, imported ONNX without a kernel file).
//
// Each model gets its own instance of the compiled module, so its linear memory (the int8 weights
// plus a few MB of activations for one sequence) is freed with it. The module is a static import:
// workerd compiles it at deploy time, as it does ORT's.
import kernelsWasm from "./kernels.wasm";

type Exports = {
  memory: WebAssembly.Memory;
  ss_alloc(len: number): number;
  ss_free(ptr: number, len: number): void;
  ss_model_new(blob: number, len: number): number;
  ss_model_free(model: number): void;
  ss_model_dims(model: number): number;
  ss_model_layers(model: number): number;
  ss_embed(model: number, ids: number, n: number, out: number): number;
  ss_begin(model: number, ids: number, n: number): number;
  ss_layer(model: number, i: number): number;
  ss_finish(model: number, out: number): number;
};

/** Linear memory held by every live kernel instance (the isolate's 128 MB counts it). */
const live = new Set<KernelModel>();
export const kernelMemoryBytes = () => [...live].reduce((n, k) => n + k.memoryBytes(), 0);

export class KernelModel {
  private freed = false;
  private idsPtr = 0;
  private idsCap = 0;
  private readonly outPtr: number;

  private constructor(
    private readonly x: Exports,
    private readonly model: number,
    private readonly blob: { ptr: number; len: number },
    readonly dims: number,
  ) {
    this.outPtr = x.ss_alloc(dims * 4);
    live.add(this);
  }

  /**
   * Copies a `model.int8.kernel` file into a fresh instance. Throws when the module refuses the
   * file (bad magic, a shape it cannot run, sections past the end).
   */
  static async load(file: Uint8Array): Promise<KernelModel> {
    const instance = await WebAssembly.instantiate(kernelsWasm, {});
    const x = instance.exports as unknown as Exports;
    const ptr = x.ss_alloc(file.byteLength);
    if (!ptr) throw new Error(`kernel: cannot allocate ${file.byteLength} bytes for the model`);
    new Uint8Array(x.memory.buffer, ptr, file.byteLength).set(file);
    const model = x.ss_model_new(ptr, file.byteLength);
    if (!model) throw new Error("kernel: the model file is malformed or its shape is not supported");
    return new KernelModel(x, model, { ptr, len: file.byteLength }, x.ss_model_dims(model));
  }

  memoryBytes(): number {
    return this.freed ? 0 : this.x.memory.buffer.byteLength;
  }

  /** One sequence of token ids → its pooled, L2-normalised embedding. */
  embed(ids: readonly number[]): Float32Array {
    this.check(this.x.ss_embed(this.model, this.writeIds(ids), ids.length, this.outPtr), ids.length);
    return this.output();
  }

  /**
   * The same vector as `embed`, computed a layer at a time with `between()` awaited after each
   * (but the last), so a long sequence never holds the thread for more than one layer. The caller
   * keeps other embeds of this model out until it resolves (they share its scratch memory).
   */
  async embedInLayers(ids: readonly number[], between: () => Promise<void>): Promise<Float32Array> {
    this.check(this.x.ss_begin(this.model, this.writeIds(ids), ids.length), ids.length);
    const layers = this.x.ss_model_layers(this.model);
    for (let i = 0; i < layers; i++) {
      if (i > 0) await between();
      if (this.freed) throw new Error("kernel: model released during an embed");
      this.check(this.x.ss_layer(this.model, i), ids.length);
    }
    this.check(this.x.ss_finish(this.model, this.outPtr), ids.length);
    return this.output();
  }

  private writeIds(ids: readonly number[]): number {
    if (this.freed) throw new Error("kernel: model already released");
    if (ids.length > this.idsCap) {
      if (this.idsPtr) this.x.ss_free(this.idsPtr, this.idsCap * 4);
      this.idsCap = Math.max(ids.length, 128);
      this.idsPtr = this.x.ss_alloc(this.idsCap * 4);
    }
    // Views are made after any allocation: growing memory detaches earlier ones.
    new Uint32Array(this.x.memory.buffer, this.idsPtr, ids.length).set(ids);
    return this.idsPtr;
  }

  private check(status: number, n: number): void {
    if (status !== 0) {
      throw new Error(`kernel: refused a sequence of ${n} ids (empty, too long, or outside the vocabulary)`);
    }
  }

  private output(): Float32Array {
    return new Float32Array(this.x.memory.buffer, this.outPtr, this.dims).slice();
  }

  release(): void {
    if (this.freed) return;
    this.x.ss_model_free(this.model);
    this.x.ss_free(this.blob.ptr, this.blob.len);
    this.freed = true;
    live.delete(this);
  }
}
