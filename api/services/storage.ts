import { sha256Hex } from "../lib/crypto";

/**
 * Thin R2 wrapper that records and verifies SHA-256, so nothing unverified becomes registered. Routes
 * reach R2 only through it; `bucket` is for services that stream ranges or pinned versions.
 */
export class Storage {
  constructor(readonly bucket: R2Bucket) {}

  /** Stores `body` under `key`; R2 itself rejects the write when the content's SHA-256 differs. */
  async putVerified(key: string, body: ArrayBuffer | Uint8Array, sha256: string, contentType?: string) {
    return this.bucket.put(key, body, {
      sha256,
      httpMetadata: contentType ? { contentType } : undefined,
      customMetadata: { sha256 },
    });
  }

  async put(key: string, body: ArrayBuffer | Uint8Array | string, contentType?: string) {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const sha256 = await sha256Hex(bytes);
    await this.putVerified(key, bytes, sha256, contentType);
    return { key, sha256, bytes: bytes.byteLength };
  }

  get(key: string) {
    return this.bucket.get(key);
  }

  head(key: string) {
    return this.bucket.head(key);
  }

  createMultipart(key: string, options?: R2MultipartOptions) {
    return this.bucket.createMultipartUpload(key, options);
  }

  resumeMultipart(key: string, uploadId: string) {
    return this.bucket.resumeMultipartUpload(key, uploadId);
  }

  async delete(keys: string[]) {
    if (keys.length > 0) await this.bucket.delete(keys);
  }
}
