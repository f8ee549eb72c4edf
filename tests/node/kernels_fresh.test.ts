// The committed int8 encoder kernels (api/services/encoder/kernels.wasm, decision 0011): what
// kernels/ compiles to, exporting what kernel.ts calls.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const WASM = path.join(root, "api/services/encoder/kernels.wasm");

/** cargo with the wasm32 target already installed (the check never downloads a toolchain). */
function hasToolchain(): boolean {
  try {
    execFileSync("cargo", ["--version"], { stdio: "ignore" });
    const targets = execFileSync("rustup", ["target", "list", "--installed"], { encoding: "utf8" });
    return targets.split("\n").includes("wasm32-unknown-unknown");
  } catch {
    return false;
  }
}

describe("WASM int8 encoder kernels", () => {
  it("validates (SIMD + relaxed SIMD), exports kernel.ts's functions and, where Rust is installed, is what kernels/ builds", async () => {
    const bytes = readFileSync(WASM);
    expect(WebAssembly.validate(bytes)).toBe(true);
    const { instance } = await WebAssembly.instantiate(bytes, {});
    for (const name of [
      "memory",
      "ss_alloc",
      "ss_free",
      "ss_model_new",
      "ss_model_free",
      "ss_model_dims",
      "ss_embed",
    ]) {
      expect(instance.exports, name).toHaveProperty(name);
    }
    if (hasToolchain()) {
      const out = execFileSync("bash", [path.join(root, "scripts/build-kernels.sh"), "--check"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      expect(out).toContain("up to date");
    }
  }, 300_000);
});
