// One entry point for encoded images: sniff the magic bytes, decode synchronously (PNG via fflate,
// JPEG via jpeg-js) so the same code runs in the Worker and in Node.

import { ImageDecodeError, MAX_IMAGE_PIXELS } from "./errors";
import { decodeJpeg } from "./jpeg";
import { decodePng, PNG_SIGNATURE } from "./png";

export { ImageDecodeError, MAX_IMAGE_PIXELS } from "./errors";

/** 8-bit pixels, row-major HWC; grey images keep 1 channel, colour ones have 3 (alpha dropped). */
export type DecodedImage = {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
  format: "png" | "jpeg";
};

export const isPng = (b: Uint8Array) => b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
export const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/**
 * Decodes a PNG or JPEG (decision 0005 step 1).
 *
 * @param bytes the encoded file.
 * @param limits `maxPixels`: decoded width × height allowed (default 16 megapixels).
 * @throws ImageDecodeError saying what is wrong; `tooLarge` is set when only the size is.
 */
export function decodeImage(bytes: Uint8Array, limits: { maxPixels?: number } = {}): DecodedImage {
  const maxPixels = limits.maxPixels ?? MAX_IMAGE_PIXELS;
  if (isPng(bytes)) return { ...decodePng(bytes, maxPixels), format: "png" };
  if (isJpeg(bytes)) return { ...decodeJpeg(bytes, maxPixels), format: "jpeg" };
  throw new ImageDecodeError("not a PNG or JPEG (send the file's bytes, base64-encoded)");
}
