import { presignUrl, type S3Credentials } from "./sigv4";

/** Presigned URLs live this long: long enough for one upload or download, short enough to leak little. */
export const URL_TTL_SECONDS = 15 * 60;

export const s3Credentials = (env: Env): S3Credentials => ({
  endpoint: env.S3_ENDPOINT,
  bucket: env.R2_BUCKET_NAME,
  accessKeyId: env.S3_ACCESS_KEY_ID,
  secretAccessKey: env.S3_SECRET_ACCESS_KEY,
});

export async function signedUrl(env: Env, method: "GET" | "PUT", key: string, query?: Record<string, string>) {
  const url = await presignUrl(s3Credentials(env), { method, key, expiresIn: URL_TTL_SECONDS, query });
  return { method, url, expiresAt: new Date(Date.now() + URL_TTL_SECONDS * 1000).toISOString() };
}
