// JPEG decoding through jpeg-js (pure JS, baseline and progressive). jpeg-js always hands back RGB,
// so the frame header is read first: a 1-component (grey) JPEG stays 1 channel, as Pillow gives it
// to the trainer, and the pixel limit is checked before any decoding work.

import { decode as jpegDecode } from "jpeg-js";
import { checkPixels, ImageDecodeError, MAX_IMAGE_PIXELS } from "./errors";
import type { Decoded8 } from "./png";

type Frame = { width: number; height: number; components: number; sampling: { h: number; v: number }[] };

/**
 * JPEG decoded-size limit: 4 megapixels (jpeg-js keeps every 8×8 block as its own Int32Array, about
 * 450 bytes of isolate memory per block; a 4 MP 4:2:0 photo peaks near 70 MB, a 12 MP one near
 * 330 MB RSS, past the Worker's 128 MB).
 */
export const MAX_JPEG_PIXELS = 4 * 1024 * 1024;
/**
 * What jpeg-js may account for one decode (its `maxMemoryUsageInMB`): coefficient blocks, component
 * planes and the RGB output. A 4 MP 4:2:0 JPEG needs ~45 MB of it; 4:4:4 (no chroma subsampling)
 * needs ~21 bytes per pixel, so fits up to ~2.3 MP.
 */
export const JPEG_DECODE_BUDGET_MB = 48;

/** Reads the first SOFn segment's size and component count (markers C0–CF except C4, C8, CC). */
export function readJpegFrame(bytes: Uint8Array): Frame {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) {
      pos++;
      continue;
    }
    const marker = bytes[pos + 1] as number;
    // Fill bytes, standalone markers (RSTn, TEM) have no length field.
    if (marker === 0xff) {
      pos++;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      pos += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image / start of scan before any frame
    const length = ((bytes[pos + 2] as number) << 8) | (bytes[pos + 3] as number);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (pos + 10 > bytes.length) break;
      const components = bytes[pos + 9] as number;
      const sampling: { h: number; v: number }[] = [];
      for (let c = 0; c < components && pos + 12 + 3 * c <= bytes.length; c++) {
        const hv = bytes[pos + 11 + 3 * c] as number;
        sampling.push({ h: Math.max(1, hv >> 4), v: Math.max(1, hv & 15) });
      }
      return {
        height: ((bytes[pos + 5] as number) << 8) | (bytes[pos + 6] as number),
        width: ((bytes[pos + 7] as number) << 8) | (bytes[pos + 8] as number),
        components,
        sampling,
      };
    }
    pos += 2 + length;
  }
  throw new ImageDecodeError("truncated JPEG: no frame header (SOF) before the image data");
}

/** Bytes jpeg-js will account for decoding `frame` (its own bookkeeping, mirrored). */
export function jpegDecodeBytes(frame: Frame): number {
  const maxH = Math.max(1, ...frame.sampling.map((s) => s.h));
  const maxV = Math.max(1, ...frame.sampling.map((s) => s.v));
  const mcusPerLine = Math.ceil(frame.width / 8 / maxH);
  const mcusPerColumn = Math.ceil(frame.height / 8 / maxV);
  let total = frame.width * frame.height * 3;
  for (const s of frame.sampling) {
    total += mcusPerLine * s.h * mcusPerColumn * s.v * 256; // one Int32Array(64) per block
    total +=
      Math.ceil((Math.ceil(frame.width / 8) * s.h) / maxH) *
      8 *
      Math.ceil((Math.ceil(frame.height / 8) * s.v) / maxV) *
      8;
  }
  return total;
}

const tooLarge = (message: string) => new ImageDecodeError(message, { tooLarge: true });

/**
 * Decodes a JPEG to 8-bit pixels: grey → 1 channel, YCbCr/RGB/CMYK → 3 (RGB).
 *
 * @param bytes the whole file.
 * @param maxPixels decoded-size limit (width × height), never above MAX_JPEG_PIXELS; over it, or over
 *   JPEG_DECODE_BUDGET_MB of decoder memory → ImageDecodeError with tooLarge.
 * @returns HWC uint8 pixels.
 */
export function decodeJpeg(bytes: Uint8Array, maxPixels = MAX_IMAGE_PIXELS): Decoded8 {
  maxPixels = Math.min(maxPixels, MAX_JPEG_PIXELS);
  const frame = readJpegFrame(bytes);
  if (frame.width === 0 || frame.height === 0) {
    throw new ImageDecodeError("invalid JPEG: zero width or height (DNL-sized JPEGs are not supported)");
  }
  checkPixels(frame.width, frame.height, maxPixels);
  if (![1, 3, 4].includes(frame.components)) {
    throw new ImageDecodeError(`unsupported JPEG: ${frame.components} colour components (send grey, RGB or CMYK)`);
  }
  const budget = JPEG_DECODE_BUDGET_MB * 1024 * 1024;
  const need = jpegDecodeBytes(frame);
  if (need > budget) {
    throw tooLarge(
      `${frame.width}×${frame.height} JPEG needs ${Math.ceil(need / 2 ** 20)} MB to decode, over the ${JPEG_DECODE_BUDGET_MB} MB limit ` +
        "(JPEGs without chroma subsampling cost twice as much); downscale it or save it with 4:2:0 subsampling",
    );
  }
  let rgb: Uint8Array;
  let width: number;
  let height: number;
  try {
    const img = jpegDecode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: Math.ceil(maxPixels / 1e6),
      // Blocks, component planes and the output; segments (tables, EXIF) get the headroom.
      maxMemoryUsageInMB: JPEG_DECODE_BUDGET_MB + Math.ceil(bytes.length / 2 ** 20) + 1,
    });
    rgb = img.data;
    width = img.width;
    height = img.height;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (/maxMemoryUsageInMB|maxResolutionInMP|allocate enough memory/.test(reason) || err instanceof RangeError) {
      throw tooLarge(
        `${frame.width}×${frame.height} JPEG needs more than the ${JPEG_DECODE_BUDGET_MB} MB decoder memory limit; downscale it before sending`,
      );
    }
    throw new ImageDecodeError(`corrupt JPEG: ${reason}`);
  }
  if (rgb.length < width * height * 3) throw new ImageDecodeError("truncated JPEG: image data ends early");
  if (frame.components !== 1) return { width, height, channels: 3, data: rgb.subarray(0, width * height * 3) };
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgb[i * 3] as number;
  return { width, height, channels: 1, data: grey };
}
