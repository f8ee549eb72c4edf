// Wrangler (and the Workers vitest pool) turn a `.wasm` import into a compiled WebAssembly.Module.
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
