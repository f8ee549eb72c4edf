// PNG decoder for the Worker (no canvas, no WASM): chunk walk with CRC checks, zlib inflate via
// fflate into a buffer of exactly the size the header implies (so a zip bomb cannot grow it), row
// unfiltering, Adam7, and sample conversion to 8-bit as decision 0005 step 1 says (palette
// expanded, alpha dropped, 16-bit → round(v / 257), low bit depths scaled by bit replication).

import { unzlibSync } from "fflate";
import { crc32 as crcOf } from "../../lib/crc32";
import { checkPixels, ImageDecodeError, MAX_IMAGE_PIXELS } from "./errors";

export type Decoded8 = { width: number; height: number; channels: 1 | 3; data: Uint8Array };

/**
 * Decompressed (filtered) PNG data allowed: H·(1 + W·bytes per pixel) summed over passes, plus the
 * separate output buffer when the pixels cannot be compacted in place. Exactly what a 16 MP 8-bit
 * RGB PNG needs (4096 rows of 1 + 4096·3 bytes, ~48 MiB, decoded in place and shown to fit the
 * isolate by the embeddings tests); a 4096×4096 RGBA16 header (128 MiB) or an interlaced 16 MP RGB
 * one (raw plus a separate 48 MiB output) is refused before anything is allocated.
 */
export const MAX_PNG_RAW_BYTES = 4096 * (1 + 4096 * 3);
/** IDAT chunks allowed in one PNG (encoders write one per 8–64 KiB; 20,000 covers 160 MiB+). */
export const MAX_PNG_IDAT_CHUNKS = 20_000;

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Samples per pixel by colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA). */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** CRC-32 of `bytes[start, end)`, the range form the chunk walk (and the PNG-building tests) use. */
export const crc32 = (bytes: Uint8Array, start = 0, end = bytes.length): number => crcOf(bytes.subarray(start, end));

type Header = { width: number; height: number; depth: number; colour: number; interlace: number };

/**
 * Decodes a PNG to 8-bit pixels: grey and grey+alpha → 1 channel, RGB, RGBA and palette → 3.
 *
 * @param bytes the whole file.
 * @param maxPixels decoded-size limit (width × height); over it → ImageDecodeError with tooLarge.
 * @returns HWC uint8 pixels.
 */
export function decodePng(bytes: Uint8Array, maxPixels = MAX_IMAGE_PIXELS): Decoded8 {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: Header | null = null;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let sawIdat = false;
  let pos = 8;
  let ended = false;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) throw new ImageDecodeError("truncated PNG: a chunk header is cut off");
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const end = pos + 8 + length;
    if (length > 0x7fffffff || end + 4 > bytes.length)
      throw new ImageDecodeError(`truncated PNG: ${type} chunk is cut off`);
    if (crc32(bytes, pos + 4, end) !== view.getUint32(end)) throw new ImageDecodeError(`CRC mismatch in ${type}`);
    const body = bytes.subarray(pos + 8, end);
    if (type === "IHDR") header = readHeader(body, maxPixels);
    else if (type === "PLTE") palette = body;
    else if (type === "IDAT") {
      // Empty IDATs are legal and carry nothing; keeping a view of each is how a tiny file eats the heap.
      if (body.length > 0) {
        if (idat.length >= MAX_PNG_IDAT_CHUNKS) {
          throw new ImageDecodeError(
            `invalid PNG: more than ${MAX_PNG_IDAT_CHUNKS} IDAT chunks; re-save it with a standard encoder`,
          );
        }
        idat.push(body);
      } else sawIdat = true;
    } else if (type === "IEND") {
      ended = true;
      break;
    }
    pos = end + 4;
  }
  if (!header) throw new ImageDecodeError("truncated PNG: no IHDR chunk");
  if (idat.length === 0) {
    throw new ImageDecodeError(sawIdat ? "truncated PNG: image data ends early" : "truncated PNG: no IDAT chunk");
  }
  if (!ended) throw new ImageDecodeError("truncated PNG: no IEND chunk");
  if (header.colour === 3 && !palette) throw new ImageDecodeError("invalid PNG: palette image without a PLTE chunk");

  const { width, height, depth, colour, interlace } = header;
  const samples = SAMPLES[colour] as number;
  const bitsPerPixel = samples * depth;
  const passes = interlace ? ADAM7 : ([[0, 0, 1, 1]] as const);
  let rawSize = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw > 0 && ph > 0) rawSize += ph * (1 + Math.ceil((pw * bitsPerPixel) / 8));
  }
  const outChannels: 1 | 3 = colour === 0 || colour === 4 ? 1 : 3;
  // Non-interlaced, 8/16-bit, not palette: every output byte lands at or before the bytes it is read
  // from, and rows are all unfiltered first, so the output is compacted into `raw` in place.
  const inPlace = !interlace && colour !== 3 && depth >= 8;
  const decodeBytes = rawSize + (inPlace ? 0 : width * height * outChannels);
  if (decodeBytes > MAX_PNG_RAW_BYTES) {
    const mib = (n: number) => Math.ceil(n / (1024 * 1024));
    throw new ImageDecodeError(
      `${width}×${height} PNG (${depth}-bit, ${samples} samples per pixel) needs ${mib(decodeBytes)} MiB to decode, over the ${Math.round(MAX_PNG_RAW_BYTES / (1024 * 1024))} MiB limit; downscale it or save it as 8-bit`,
      { tooLarge: true },
    );
  }
  const raw = inflate(concat(idat), rawSize);

  const out = inPlace ? raw : new Uint8Array(width * height * outChannels);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const pal: Uint8Array = palette ?? new Uint8Array(0);
  let offset = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const stride = Math.ceil((pw * bitsPerPixel) / 8);
    unfilter(raw, offset, stride, ph, bpp);
    for (let y = 0; y < ph; y++) {
      const row = offset + y * (stride + 1) + 1;
      for (let x = 0; x < pw; x++) {
        const o = ((y0 + y * dy) * width + x0 + x * dx) * outChannels;
        if (colour === 3) {
          const index = sample(raw, row, x, depth);
          const p = index * 3;
          // An index past the palette is black, as Pillow and browsers render it.
          const ok = p + 2 < pal.length;
          out[o] = ok ? (pal[p] as number) : 0;
          out[o + 1] = ok ? (pal[p + 1] as number) : 0;
          out[o + 2] = ok ? (pal[p + 2] as number) : 0;
        } else if (depth === 8) {
          const i = row + x * samples;
          for (let c = 0; c < outChannels; c++) out[o + c] = raw[i + c] as number;
        } else {
          for (let c = 0; c < outChannels; c++) out[o + c] = to8(sample(raw, row, x * samples + c, depth), depth);
        }
      }
    }
    offset += ph * (stride + 1);
  }
  return { width, height, channels: outChannels, data: inPlace ? out.subarray(0, width * height * outChannels) : out };
}

function readHeader(body: Uint8Array, maxPixels: number): Header {
  if (body.length !== 13) throw new ImageDecodeError("invalid PNG: IHDR is not 13 bytes");
  const v = new DataView(body.buffer, body.byteOffset, 13);
  const h = { width: v.getUint32(0), height: v.getUint32(4), depth: body[8] as number, colour: body[9] as number };
  if (h.width === 0 || h.height === 0) throw new ImageDecodeError("invalid PNG: zero width or height");
  if (!(h.colour in SAMPLES)) throw new ImageDecodeError(`invalid PNG: colour type ${h.colour}`);
  if (!DEPTHS[h.colour]?.includes(h.depth)) {
    throw new ImageDecodeError(`invalid PNG: bit depth ${h.depth} with colour type ${h.colour}`);
  }
  if (body[10] !== 0 || body[11] !== 0) throw new ImageDecodeError("invalid PNG: unknown compression or filter method");
  const interlace = body[12] as number;
  if (interlace > 1) throw new ImageDecodeError(`invalid PNG: interlace method ${interlace}`);
  checkPixels(h.width, h.height, maxPixels);
  return { ...h, interlace };
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function inflate(data: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let got: Uint8Array;
  try {
    // fflate writes into `out` and stops at its end: the header bounds what an IDAT stream may cost.
    got = unzlibSync(data, { out });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ImageDecodeError(
      /EOF|end/i.test(reason) ? "truncated PNG: image data ends early" : `corrupt PNG image data: ${reason}`,
    );
  }
  if (got.length < size) throw new ImageDecodeError("truncated PNG: image data shorter than the header says");
  return got;
}

/** Undoes the five PNG row filters in place; `bpp` is bytes per complete pixel (at least 1). */
function unfilter(raw: Uint8Array, offset: number, stride: number, rows: number, bpp: number) {
  for (let y = 0; y < rows; y++) {
    const start = offset + y * (stride + 1);
    const kind = raw[start] as number;
    const cur = start + 1;
    const prev = y > 0 ? cur - (stride + 1) : -1;
    const up = (i: number) => (prev >= 0 ? (raw[prev + i] as number) : 0);
    switch (kind) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < stride; i++)
          raw[cur + i] = ((raw[cur + i] as number) + (raw[cur + i - bpp] as number)) & 255;
        break;
      case 2:
        if (prev >= 0) for (let i = 0; i < stride; i++) raw[cur + i] = ((raw[cur + i] as number) + up(i)) & 255;
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const left = i >= bpp ? (raw[cur + i - bpp] as number) : 0;
          raw[cur + i] = ((raw[cur + i] as number) + ((left + up(i)) >> 1)) & 255;
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? (raw[cur + i - bpp] as number) : 0;
          const b = up(i);
          const c = i >= bpp ? up(i - bpp) : 0;
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          raw[cur + i] = ((raw[cur + i] as number) + pred) & 255;
        }
        break;
      default:
        throw new ImageDecodeError(`invalid PNG: row filter type ${kind}`);
    }
  }
}

/** The `i`-th sample of a row, at any bit depth (big-endian, as PNG packs them). */
function sample(raw: Uint8Array, row: number, i: number, depth: number): number {
  if (depth === 8) return raw[row + i] as number;
  if (depth === 16) return ((raw[row + 2 * i] as number) << 8) | (raw[row + 2 * i + 1] as number);
  const bit = i * depth;
  const byte = raw[row + (bit >> 3)] as number;
  return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
}

/** A sample to 8 bits: 16-bit rounds v/257; 1/2/4-bit scale by bit replication (×255, ×85, ×17). */
function to8(v: number, depth: number): number {
  if (depth === 8) return v;
  if (depth === 16) return Math.round(v / 257);
  return (v * 255) / ((1 << depth) - 1);
}
