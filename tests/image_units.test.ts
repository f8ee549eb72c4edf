// Image decoding and preprocessing in workerd against the trainer's own output
// (tests/fixtures/images/parity.json, written by scripts/image_parity_fixture.py from
// selfsup_trainer.vision.preprocess): decoded pixels identical for every PNG, tensors within 1e-5,
// and the JPEG difference measured and bounded.
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { decodeImage, ImageDecodeError } from "../api/services/image/decode";
import { aaWeights, poolPixels, preprocessImage } from "../api/services/image/preprocess";
import { decodeBase64Floats } from "./embeddings_fixture";
import parity from "./fixtures/images/parity.json";
import { imageFixture } from "./modal_fixture";

type Spec = { mean: number[]; std: number[] };
const specs = parity.specs as Record<string, Spec>;
const spec = (size: number, channels: 1 | 3) => ({
  image_size: size,
  channels,
  scale: 255,
  ...(specs[channels] as Spec),
});

const maxAbsDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

describe("image preprocessing parity with the trainer (decision 0005)", () => {
  const pngs = parity.images.filter((i) => i.format === "png");
  const jpegs = parity.images.filter((i) => i.format === "jpeg");

  it("covers the PNG kinds the contract names and a JPEG of each kind", () => {
    const names = parity.images.map((i) => i.file);
    for (const f of ["rgb.png", "grey.png", "palette.png", "palette4.png", "rgb16.png", "grey16.png", "rgba.png"]) {
      expect(names).toContain(f);
    }
    expect(names).toEqual(expect.arrayContaining(["wide_interlaced.png", "rgba16_interlaced.png", "grey2bit.png"]));
    expect(jpegs.map((j) => j.file).sort()).toEqual(["grey.jpg", "photo.jpg", "progressive.jpg"]);
  });

  it.each(pngs.map((p) => [p.file, p] as const))("%s decodes to the trainer's exact pixels", async (file, ref) => {
    const img = decodeImage(imageFixture(file));
    expect(img.format).toBe("png");
    expect([img.width, img.height, img.channels]).toEqual([ref.width, ref.height, ref.channels]);
    expect(await sha256Hex(img.data)).toBe(ref.pixels_sha256);
  });

  it("every PNG's tensors (16 and 32 px, 1 and 3 channels) equal the trainer's within 1e-5", () => {
    let worst = 0;
    let tensors = 0;
    for (const ref of pngs) {
      const img = decodeImage(imageFixture(ref.file));
      for (const t of ref.tensors) {
        const want = decodeBase64Floats(t.float32_le);
        const got = preprocessImage(img, spec(t.image_size, t.channels as 1 | 3));
        expect(got.length).toBe(t.channels * t.image_size * t.image_size);
        const diff = maxAbsDiff(got, want);
        expect(diff, `${ref.file} @${t.image_size}px ×${t.channels}`).toBeLessThanOrEqual(1e-5);
        worst = Math.max(worst, diff);
        tensors++;
      }
    }
    console.log(
      `PNG parity vs trainer: ${tensors} tensors from ${pngs.length} PNGs, max |Δ| ${worst.toExponential(2)}`,
    );
  });

  it("JPEGs: grey stays 1 channel, colour is RGB; the tensor difference from Pillow/libjpeg is small", () => {
    const report: string[] = [];
    for (const ref of jpegs) {
      const img = decodeImage(imageFixture(ref.file));
      expect([img.format, img.width, img.height, img.channels]).toEqual(["jpeg", ref.width, ref.height, ref.channels]);
      let worst = 0;
      for (const t of ref.tensors) {
        const got = preprocessImage(img, spec(t.image_size, t.channels as 1 | 3));
        worst = Math.max(worst, maxAbsDiff(got, decodeBase64Floats(t.float32_le)));
      }
      report.push(`${ref.file}: max |Δ| ${worst.toExponential(2)}`);
      // jpeg-js and libjpeg differ by IDCT rounding and chroma upsampling (a few levels of 255 per
      // pixel, ÷ std ~0.23), which resizing mostly averages out.
      expect(worst).toBeLessThan(0.05);
    }
    console.log(`JPEG parity vs trainer (normalized units): ${report.join("; ")}`);
  });
});

describe("resize filter", () => {
  it("is the identity at the same size and normalized otherwise", () => {
    const same = aaWeights(7, 7);
    same.w.forEach((row, i) => {
      expect(same.lo[i]).toBe(i);
      expect(Array.from(row)[0]).toBe(1);
    });
    for (const [n, m] of [
      [28, 16],
      [8, 32],
      [45, 16],
    ] as const) {
      for (const row of aaWeights(n, m).w) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
    // 4 → 2: taps 0..2 for output 0 with raw weights 0.75, 0.75, 0.25 (sum 1.75), as preprocess.py.
    expect(Array.from(aaWeights(4, 2).w[0] as Float64Array)).toEqual([3 / 7, 3 / 7, 1 / 7]);
  });

  it("raw-pixel baseline pools a 3×32×32 tensor to at most 1024 values", () => {
    const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => i % 7);
    const pooled = poolPixels(x, 3, 32);
    expect(pooled.length).toBeLessThanOrEqual(1024);
    expect(pooled.length).toBe(3 * 16 * 16);
    expect(pooled[0]).toBeCloseTo((0 + 1 + (32 % 7) + (33 % 7)) / 4, 6); // the first 2×2 window
    expect(poolPixels(new Float32Array(16 * 16), 1, 16).length).toBe(256); // already small: unpooled
  });
});

describe("decoder errors name what is wrong", () => {
  const png = () => imageFixture("rgb.png").slice();

  it("not a PNG or JPEG", () => {
    expect(() => decodeImage(new TextEncoder().encode("GIF89a............"))).toThrow(/not a PNG or JPEG/);
  });

  it("CRC mismatch in IDAT, truncated PNG", () => {
    const bytes = png();
    const idat = bytes.findIndex((_, i) => String.fromCharCode(...bytes.subarray(i, i + 4)) === "IDAT");
    bytes[idat + 10] = (bytes[idat + 10] as number) ^ 0xff;
    expect(() => decodeImage(bytes)).toThrow(new ImageDecodeError("CRC mismatch in IDAT"));
    expect(() => decodeImage(png().subarray(0, 200))).toThrow(/truncated PNG/);
  });

  it("over the pixel limit is flagged tooLarge before inflating", () => {
    try {
      decodeImage(png(), { maxPixels: 1000 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ImageDecodeError);
      expect((err as ImageDecodeError).tooLarge).toBe(true);
      expect((err as Error).message).toMatch(/48×48 is over the .* megapixels max/);
    }
    expect(() => decodeImage(imageFixture("photo.jpg"), { maxPixels: 1000 })).toThrow(/megapixels max/);
  });

  it("a corrupt or cut JPEG", () => {
    const jpeg = imageFixture("photo.jpg");
    expect(() => decodeImage(jpeg.subarray(0, 150))).toThrow(ImageDecodeError);
    const garbled = jpeg.slice();
    for (let i = 400; i < garbled.length - 2; i += 3) garbled[i] = 0xff;
    expect(() => decodeImage(garbled)).toThrow(ImageDecodeError);
  });
});
