// Builds api/services/probe/wasm/logreg_kernel.wasm from its .wat source with wabt's wat2wasm
// (the npm build: no system install), SIMD enabled. The .wasm is committed because wrangler
// bundles `.wasm` imports as they are; tests/node/wasm_fresh.test.ts fails when it is stale.
// Usage: node scripts/build-wasm.mjs [--check]   (--check exits 1 when the committed file differs)
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../api/services/probe/wasm");
export const WAT_PATH = path.join(dir, "logreg_kernel.wat");
export const WASM_PATH = path.join(dir, "logreg_kernel.wasm");
export const BUILD_COMMAND = "node scripts/build-wasm.mjs";

/** The kernel's bytes as wat2wasm writes them from the committed .wat. */
export async function buildKernel() {
  const wabt = await wabtInit();
  const module = wabt.parseWat(WAT_PATH, readFileSync(WAT_PATH, "utf8"), { simd: true });
  try {
    module.validate();
    return Uint8Array.from(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bytes = await buildKernel();
  if (process.argv.includes("--check")) {
    if (!Buffer.from(bytes).equals(readFileSync(WASM_PATH))) {
      console.error(`${path.relative(process.cwd(), WASM_PATH)} is stale; run: ${BUILD_COMMAND}`);
      process.exit(1);
    }
  } else {
    writeFileSync(WASM_PATH, bytes);
    console.log(`wrote ${path.relative(process.cwd(), WASM_PATH)} (${bytes.length} bytes)`);
  }
}
