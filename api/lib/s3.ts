import { presignUrl } from "./sigv4";

/** Presigned URLs live this long: long enough for one upload or download, short enough to leak little. */
export const URL_TTL_SECONDS = 15 * 60;

export type SignedUrl = { method: "GET" | "PUT"; url: string; expiresAt: string };
export type Presign = (method: "GET" | "PUT", key: string, query?: Record<string, string>) => Promise<SignedUrl>;

/**
 * Presigner for R2's S3 API. `S3_ENDPOINT = "local"` means the endpoint `wrangler dev` serves on the
 * request's own origin (`/cdn-cgi/local/r2/s3`), so local URLs work on whatever port dev runs.
 */
export function makePresigner(env: Env, requestOrigin: string): Presign {
  const endpoint = env.S3_ENDPOINT === "local" ? `${requestOrigin}/cdn-cgi/local/r2/s3` : env.S3_ENDPOINT;
  const creds = {
    endpoint,
    bucket: env.R2_BUCKET_NAME,
    accessKeyId: env.S3_ACCESS_KEY_ID,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY,
  };
  return async (method, key, query) => ({
    method,
    url: await presignUrl(creds, { method, key, expiresIn: URL_TTL_SECONDS, query }),
    expiresAt: new Date(Date.now() + URL_TTL_SECONDS * 1000).toISOString(),
  });
}
