/**
 * A PNG or JPEG that cannot be decoded. `message` says what is wrong in words a client can act on
 * ("not a PNG or JPEG", "truncated PNG", "CRC mismatch in IDAT", "16 megapixels max"); the
 * embeddings route turns it into a 400 naming the input.
 */
export class ImageDecodeError extends Error {
  /** 413 rather than 400: the file is valid but over the decoded-size limit. */
  readonly tooLarge: boolean;

  constructor(message: string, opts: { tooLarge?: boolean } = {}) {
    super(message);
    this.name = "ImageDecodeError";
    this.tooLarge = opts.tooLarge ?? false;
  }
}

/** Decoded-size limit of decision 0005: 16 megapixels per image. */
export const MAX_IMAGE_PIXELS = 16 * 1024 * 1024;

export function checkPixels(width: number, height: number, maxPixels: number) {
  if (width * height > maxPixels) {
    const mp = Math.round(maxPixels / (1024 * 1024));
    throw new ImageDecodeError(`${width}×${height} is over the ${mp} megapixels max; downscale it before sending`, {
      tooLarge: true,
    });
  }
}
