// The committed logreg kernel (.wasm, what wrangler bundles) must be what its .wat source compiles to.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BUILD_COMMAND, buildKernel, WASM_PATH } from "../../scripts/build-wasm.mjs";

describe("WASM logreg kernel", () => {
  it("is the committed .wat compiled by wat2wasm (SIMD)", async () => {
    const built = Buffer.from(await buildKernel());
    const committed = readFileSync(WASM_PATH);
    expect(built.equals(committed), `api/services/probe/wasm/logreg_kernel.wasm is stale; run: ${BUILD_COMMAND}`).toBe(
      true,
    );
  });
});
