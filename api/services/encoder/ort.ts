// onnxruntime-web inside workerd. workerd refuses to compile WebAssembly from bytes at runtime, so
// the ORT `.wasm` is a module import that wrangler compiles at deploy time, and ORT is handed that
// compiled module: `wasmBinary` is a 4-byte dummy (so the Emscripten glue does not fetch anything)
// and, only while ORT initialises, `WebAssembly.instantiate(bytes, imports)` is replaced by one that
// instantiates the precompiled module with the imports the glue passes. One thread, no proxy worker.
// The imports are dynamic so that only code paths that embed pay for the 14 MB module.

import type * as OrtNs from "onnxruntime-web";

export type Ort = typeof OrtNs;

type Runtime = { ort: Ort; memory: () => WebAssembly.Memory | null };

let runtime: Promise<Runtime> | null = null;
let wasmMemory: WebAssembly.Memory | null = null;
let initMs = 0;

/** The WASM linear memory ORT allocates in (the isolate's 128 MB limit counts it), once loaded. */
export const ortMemoryBytes = () => wasmMemory?.buffer.byteLength ?? 0;
export const ortInitMs = () => initMs;

function findMemory(...candidates: unknown[]): WebAssembly.Memory | null {
  for (const c of candidates) {
    if (c instanceof WebAssembly.Memory) return c;
    if (c && typeof c === "object") {
      for (const v of Object.values(c)) {
        if (v instanceof WebAssembly.Memory) return v;
        if (v && typeof v === "object" && !(v instanceof WebAssembly.Module)) {
          for (const w of Object.values(v)) if (w instanceof WebAssembly.Memory) return w;
        }
      }
    }
  }
  return null;
}

async function init(): Promise<Runtime> {
  const started = Date.now();
  const [ort, wasm] = await Promise.all([
    import("onnxruntime-web/wasm") as Promise<Ort>,
    import("onnxruntime-web/ort-wasm-simd-threaded.wasm").then((m) => m.default as WebAssembly.Module),
  ]);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.simd = true;
  ort.env.wasm.wasmBinary = new Uint8Array([0, 97, 115, 109]); // "\0asm": never compiled, just present
  ort.env.logLevel = "error";

  const original = WebAssembly.instantiate;
  const patched = async (source: unknown, imports?: WebAssembly.Imports) => {
    if (source instanceof WebAssembly.Module) return original(source, imports);
    const instance = await original(wasm, imports);
    wasmMemory = findMemory(imports, instance.exports);
    return { instance, module: wasm };
  };
  (WebAssembly as { instantiate: unknown }).instantiate = patched;
  try {
    // Creating a session is what triggers ORT's one-time WASM initialisation; a 1-node model does it.
    await ort.InferenceSession.create(IDENTITY_ONNX);
  } finally {
    (WebAssembly as { instantiate: unknown }).instantiate = original;
  }
  initMs = Date.now() - started;
  return { ort, memory: () => wasmMemory };
}

/**
 * ORT, initialised once per isolate behind one shared promise. Call it inside a handler (workerd
 * forbids async I/O at global scope). A failed init is kept: the isolate stays poisoned rather
 * than half-initialising ORT twice, and requests fail fast with the original error.
 */
export function loadOrt(): Promise<Runtime> {
  runtime ??= init();
  return runtime;
}

// ONNX model: Identity(x: float[1]) -> y. Built by hand (protobuf bytes) so init needs no file.
const IDENTITY_ONNX = new Uint8Array([
  0x08, 0x08, 0x3a, 0x37, 0x0a, 0x10, 0x0a, 0x01, 0x78, 0x12, 0x01, 0x79, 0x22, 0x08, 0x49, 0x64, 0x65, 0x6e, 0x74,
  0x69, 0x74, 0x79, 0x12, 0x01, 0x67, 0x5a, 0x0f, 0x0a, 0x01, 0x78, 0x12, 0x0a, 0x0a, 0x08, 0x08, 0x01, 0x12, 0x04,
  0x0a, 0x02, 0x08, 0x01, 0x62, 0x0f, 0x0a, 0x01, 0x79, 0x12, 0x0a, 0x0a, 0x08, 0x08, 0x01, 0x12, 0x04, 0x0a, 0x02,
  0x08, 0x01, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x0d,
]);
