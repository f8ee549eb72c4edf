// Loads the WASM SIMD kernel in Workers: wrangler (and the Workers vitest pool) compile `.wasm`
// imports at build time, the only way workerd runs WASM. Import this module for its effect.
import kernel from "./wasm/logreg_kernel.wasm";
import { useWasmKernel } from "./wasm_kernel";

useWasmKernel(kernel);
