// Hostile inputs built here (they are bombs, not data): a PNG header claiming 4096×4096 RGBA16, a
// PNG of many empty IDATs, a JPEG frame header claiming too many pixels, a zip whose end record
// claims 300,000 entries. Each is refused with a message, before the memory is spent.
import { describe, expect, it } from "vitest";
import { readZipDirectory } from "../api/services/archive/zip";
import { checkImageDataset, type ImageSource } from "../api/services/dataset_check_image";
import { decodeImage, ImageDecodeError } from "../api/services/image/decode";
import { JPEG_DECODE_BUDGET_MB, jpegDecodeBytes, MAX_JPEG_PIXELS } from "../api/services/image/jpeg";
import { crc32, MAX_PNG_IDAT_CHUNKS, PNG_SIGNATURE } from "../api/services/image/png";

const be32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

function chunk(type: string, body: number[] | Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  out.set(be32(body.length), 0);
  out.set(
    [...type].map((c) => c.charCodeAt(0)),
    4,
  );
  out.set(body, 8);
  out.set(be32(crc32(out, 4, 8 + body.length)), 8 + body.length);
  return out;
}

function png(width: number, height: number, depth: number, colour: number, chunks: Uint8Array[]): Uint8Array {
  const parts = [
    new Uint8Array(PNG_SIGNATURE),
    chunk("IHDR", [...be32(width), ...be32(height), depth, colour, 0, 0, 0]),
    ...chunks,
    chunk("IEND", []),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** SOI, then a baseline SOF0 frame header: `components` × (id, sampling HV, table). */
function jpegFrame(width: number, height: number, sampling: number[]): Uint8Array {
  const comps = sampling.flatMap((hv, i) => [i + 1, hv, 0]);
  const len = 8 + comps.length;
  return new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xc0,
    len >> 8,
    len & 255,
    8,
    height >> 8,
    height & 255,
    width >> 8,
    width & 255,
    sampling.length,
    ...comps,
    0xff,
    0xd9,
  ]);
}

function tooLarge(bytes: Uint8Array): ImageDecodeError {
  try {
    decodeImage(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(ImageDecodeError);
    return err as ImageDecodeError;
  }
  throw new Error("decoded a bomb");
}

describe("PNG bombs", () => {
  it("a header claiming 4096×4096 RGBA16 is too large before the 128 MB buffer is allocated", () => {
    const bomb = png(4096, 4096, 16, 6, [chunk("IDAT", [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])]);
    expect(bomb.length).toBeLessThan(100);
    const err = tooLarge(bomb);
    expect(err.tooLarge).toBe(true);
    expect(err.message).toMatch(/4096×4096 PNG .* needs 129 MiB to decode, over the 48 MiB limit/);
  });

  it("many empty IDAT chunks hold no memory and are capped", () => {
    const empty = chunk("IDAT", []);
    const many = Array.from({ length: MAX_PNG_IDAT_CHUNKS + 10 }, () => empty);
    const onlyEmpty = tooLarge(png(8, 8, 8, 0, many));
    expect(onlyEmpty.tooLarge).toBe(false);
    expect(onlyEmpty.message).toMatch(/truncated PNG/);
    const data = chunk("IDAT", [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    const tooMany = tooLarge(
      png(
        8,
        8,
        8,
        0,
        Array.from({ length: MAX_PNG_IDAT_CHUNKS + 1 }, () => data),
      ),
    );
    expect(tooMany.message).toMatch(/more than 20000 IDAT chunks/);
  });
});

describe("JPEG limits", () => {
  it("a frame header over the JPEG pixel limit is too large, read before decoding", () => {
    expect(MAX_JPEG_PIXELS).toBe(4 * 1024 * 1024);
    const err = tooLarge(jpegFrame(4000, 3000, [0x22, 0x11, 0x11]));
    expect(err.tooLarge).toBe(true);
    expect(err.message).toMatch(/4000×3000 is over the 4 megapixels max/);
  });

  it("a frame within the pixels but over the decoder memory budget (4:4:4) is too large too", () => {
    const err = tooLarge(jpegFrame(2048, 2048, [0x11, 0x11, 0x11]));
    expect(err.tooLarge).toBe(true);
    expect(err.message).toMatch(/needs \d+ MB to decode, over the 48 MB limit/);
  });

  it("a 4 MP 4:2:0 photo and a 4 MP grey one fit the budget", () => {
    const budget = JPEG_DECODE_BUDGET_MB * 1024 * 1024;
    const photo = {
      width: 2560,
      height: 1600,
      components: 3,
      sampling: [
        { h: 2, v: 2 },
        { h: 1, v: 1 },
        { h: 1, v: 1 },
      ],
    };
    expect(jpegDecodeBytes(photo)).toBeLessThan(budget);
    const grey = { width: 2048, height: 2048, components: 1, sampling: [{ h: 1, v: 1 }] };
    expect(jpegDecodeBytes(grey)).toBeLessThan(budget);
  });
});

/** A zip64 end record claiming `entries` entries / `cdSize` bytes of directory after `pad` bytes. */
function zipClaiming(entries: number, cdSize: number, pad = 0): Uint8Array {
  const out = new Uint8Array(pad + 56 + 20 + 22);
  const v = new DataView(out.buffer);
  const rec = pad;
  v.setUint32(rec, 0x06064b50, true);
  v.setBigUint64(rec + 4, 44n, true);
  v.setBigUint64(rec + 24, BigInt(entries), true);
  v.setBigUint64(rec + 32, BigInt(entries), true);
  v.setBigUint64(rec + 40, BigInt(cdSize), true);
  v.setBigUint64(rec + 48, 0n, true);
  const loc = rec + 56;
  v.setUint32(loc, 0x07064b50, true);
  v.setBigUint64(loc + 8, BigInt(rec), true);
  v.setUint32(loc + 16, 1, true);
  const eocd = loc + 20;
  v.setUint32(eocd, 0x06054b50, true);
  v.setUint16(eocd + 8, 0xffff, true);
  v.setUint16(eocd + 10, 0xffff, true);
  v.setUint32(eocd + 12, 0xffffffff, true);
  v.setUint32(eocd + 16, 0xffffffff, true);
  return out;
}

const memorySource = (bytes: Uint8Array): ImageSource => ({
  size: bytes.length,
  range: async (offset, length) => bytes.slice(offset, offset + length),
  stream: async () => new Blob([bytes]).stream(),
});

describe("zip central directory limits", () => {
  it("300,000 claimed entries: refused before the directory is read; the dataset is invalid with the split advice", async () => {
    const zip = zipClaiming(300_000, 1000, 1000);
    let reads = 0;
    await expect(
      readZipDirectory(zip.length, async (o, l) => {
        reads++;
        return zip.slice(o, o + l);
      }),
    ).rejects.toThrow(/300000 entries, over the 200000 limit per archive; split the set/);
    expect(reads).toBe(1);
    const r = await checkImageDataset(memorySource(zip), { format: "zip", purpose: "pretrain" });
    expect(r.errors[0]?.message).toMatch(/over the 200000 limit per archive; split the set into several archives/);
  });

  it("a directory over 8 MiB is refused before it is read", async () => {
    const size = 9 * 1024 * 1024;
    const zip = zipClaiming(1000, size, size);
    const r = await checkImageDataset(memorySource(zip), { format: "zip", purpose: "pretrain" });
    expect(r.errors[0]?.message).toMatch(/central directory is 9437184 bytes, over the 8 MiB limit; split the set/);
  });
});
