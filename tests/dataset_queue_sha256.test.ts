// The resumable SHA-256 behind background dataset checks (api/lib/sha256.ts) against WebCrypto:
// random data of awkward lengths, fed in random splits, with the state saved and restored between
// pieces as a queue consumer does between invocations.
import { describe, expect, it } from "vitest";
import { Sha256 } from "../api/lib/sha256";

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const subtle = async (b: Uint8Array) => hex(await crypto.subtle.digest("SHA-256", b));

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** A deterministic generator for split points (xorshift32), so a failure can be replayed. */
function rng(seed: number) {
  let s = seed || 1;
  return (max: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % max;
  };
}

describe("Sha256", () => {
  it("matches WebCrypto on the standard vectors and on lengths around the block and padding edges", async () => {
    expect(new Sha256().hex()).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(new Sha256().update(new TextEncoder().encode("abc")).hex()).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    for (const n of [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4095, 4096, 100_003]) {
      const data = random(n);
      expect(new Sha256().update(data).hex(), `length ${n}`).toBe(await subtle(data));
    }
  });

  it("gives the same digest for any split of the input, with the state saved and restored in between", async () => {
    const next = rng(12345);
    for (let round = 0; round < 20; round++) {
      const data = random(1 + next(300_000));
      let h = new Sha256();
      for (let at = 0; at < data.length; ) {
        const take = Math.min(data.length - at, next(3) === 0 ? next(70) : next(40_000));
        h.update(data.subarray(at, at + take));
        at += take;
        // Through JSON, as it is stored between invocations.
        if (next(2) === 0) h = Sha256.restore(JSON.parse(JSON.stringify(h.save())));
      }
      expect(h.bytes).toBe(data.length);
      expect(h.hex(), `round ${round}, ${data.length} bytes`).toBe(await subtle(data));
    }
  });

  it("refuses a state that is not one it saved", () => {
    expect(() => Sha256.restore({ h: [1, 2, 3], buffer: "", length: 0 })).toThrow(/not a saved SHA-256 state/);
  });
});
