// Presigned URLs for R2's S3 API, signed by aws4fetch's SigV4 (docs/decisions/0002). A URL is bound
// to one method and one object key (both are in the signed canonical request, with `host`) and
// expires after `X-Amz-Expires` seconds.
import { AwsV4Signer } from "aws4fetch";

/** Presigned URLs live this long: long enough for one upload or download, short enough to leak little. */
export const URL_TTL_SECONDS = 15 * 60;

export type SignedUrl = { method: "GET" | "PUT"; url: string; expiresAt: string };
export type Presign = (method: "GET" | "PUT", key: string, query?: Record<string, string>) => Promise<SignedUrl>;

export type S3Credentials = {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
};

/** RFC 3986 encoding as S3 expects it (everything but unreserved characters). */
const uriEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Presigns one path-style request: `<endpoint>/<bucket>/<key>?X-Amz-...&X-Amz-Signature=...`.
 *
 * @param req.query extra signed parameters (`partNumber`, `uploadId` for UploadPart).
 * @param req.now the signing time (tests pin it); defaults to now.
 */
export async function presignUrl(
  creds: S3Credentials,
  req: { method: "GET" | "PUT" | "HEAD"; key: string; expiresIn: number; query?: Record<string, string>; now?: Date },
): Promise<string> {
  const path = [creds.bucket, ...req.key.split("/")].map(uriEncode).join("/");
  const url = new URL(`${creds.endpoint.replace(/\/$/, "")}/${path}`);
  // Set before signing, so the expiry is signed too (aws4fetch would default to a day).
  url.searchParams.set("X-Amz-Expires", String(req.expiresIn));
  for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
  const signer = new AwsV4Signer({
    method: req.method,
    url: url.toString(),
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    service: "s3",
    region: creds.region ?? "auto",
    signQuery: true,
    datetime: req.now?.toISOString().replace(/[:-]|\.\d{3}/g, ""),
  });
  return (await signer.sign()).url.toString();
}

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
