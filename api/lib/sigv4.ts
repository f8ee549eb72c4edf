// AWS Signature V4 query presigning for R2's S3 API, on WebCrypto. A presigned URL is bound to one
// method and one object key (both are signed) and expires after `expiresIn` seconds.
import { toHex } from "./crypto";

const enc = new TextEncoder();

/** RFC 3986 encoding as S3 expects it (everything but unreserved characters). */
export const awsUriEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);

async function hmac(key: ArrayBuffer | Uint8Array, data: string): Promise<ArrayBuffer> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", k, enc.encode(data));
}

export type S3Credentials = {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
};

export async function presignUrl(
  creds: S3Credentials,
  req: { method: "GET" | "PUT" | "HEAD"; key: string; expiresIn: number; query?: Record<string, string>; now?: Date },
): Promise<string> {
  const region = creds.region ?? "auto";
  const now = req.now ?? new Date();
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${region}/s3/aws4_request`;
  const base = new URL(creds.endpoint);
  const path = `${base.pathname.replace(/\/$/, "")}/${awsUriEncode(creds.bucket)}/${req.key.split("/").map(awsUriEncode).join("/")}`;
  const params: [string, string][] = [
    ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
    ["X-Amz-Credential", `${creds.accessKeyId}/${scope}`],
    ["X-Amz-Date", amzDate],
    ["X-Amz-Expires", String(req.expiresIn)],
    ["X-Amz-SignedHeaders", "host"],
    ...Object.entries(req.query ?? {}),
  ];
  const query = params
    .map(([k, v]) => [awsUriEncode(k), awsUriEncode(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonical = [req.method, path, query, `host:${base.host}\n`, "host", "UNSIGNED-PAYLOAD"].join("\n");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    toHex(await crypto.subtle.digest("SHA-256", enc.encode(canonical))),
  ].join("\n");
  let key = await hmac(enc.encode(`AWS4${creds.secretAccessKey}`), date);
  for (const part of [region, "s3", "aws4_request"]) key = await hmac(key, part);
  const signature = toHex(await hmac(key, stringToSign));
  return `${base.protocol}//${base.host}${path}?${query}&X-Amz-Signature=${signature}`;
}
