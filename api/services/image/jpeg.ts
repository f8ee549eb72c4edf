// JPEG decoding through jpeg-js (pure JS, baseline and progressive). jpeg-js always hands back RGB,
// so the frame header is read first: a 1-component (grey) JPEG stays 1 channel, as Pillow gives it
// to the trainer, and the pixel limit is checked before any decoding work.

import { decode as jpegDecode } from "jpeg-js";
import { checkPixels, ImageDecodeError, MAX_IMAGE_PIXELS } from "./errors";
import type { Decoded8 } from "./png";

type Frame = { width: number; height: number; components: number };

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
      return {
        height: ((bytes[pos + 5] as number) << 8) | (bytes[pos + 6] as number),
        width: ((bytes[pos + 7] as number) << 8) | (bytes[pos + 8] as number),
        components: bytes[pos + 9] as number,
      };
    }
    pos += 2 + length;
  }
  throw new ImageDecodeError("truncated JPEG: no frame header (SOF) before the image data");
}

/**
 * Decodes a JPEG to 8-bit pixels: grey → 1 channel, YCbCr/RGB/CMYK → 3 (RGB).
 *
 * @param bytes the whole file.
 * @param maxPixels decoded-size limit (width × height); over it → ImageDecodeError with tooLarge.
 * @returns HWC uint8 pixels.
 */
export function decodeJpeg(bytes: Uint8Array, maxPixels = MAX_IMAGE_PIXELS): Decoded8 {
  const frame = readJpegFrame(bytes);
  if (frame.width === 0 || frame.height === 0) {
    throw new ImageDecodeError("invalid JPEG: zero width or height (DNL-sized JPEGs are not supported)");
  }
  checkPixels(frame.width, frame.height, maxPixels);
  if (![1, 3, 4].includes(frame.components)) {
    throw new ImageDecodeError(`unsupported JPEG: ${frame.components} colour components (send grey, RGB or CMYK)`);
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
      // Component planes, the colour-converted copy and the output: ~10 bytes per pixel at most.
      maxMemoryUsageInMB: Math.ceil((frame.width * frame.height * 10) / (1024 * 1024)) + 16,
    });
    rgb = img.data;
    width = img.width;
    height = img.height;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ImageDecodeError(`corrupt JPEG: ${reason}`);
  }
  if (rgb.length < width * height * 3) throw new ImageDecodeError("truncated JPEG: image data ends early");
  if (frame.components !== 1) return { width, height, channels: 3, data: rgb.subarray(0, width * height * 3) };
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgb[i * 3] as number;
  return { width, height, channels: 1, data: grey };
}
