// Presigned URLs (api/lib/s3.ts, signed by aws4fetch): the URL shape, the 15-minute expiry, and the
// binding to one method and one key. The known signatures were produced by the hand-written SigV4
// presigner aws4fetch replaced, so they also show the swap changed no URL R2 would accept.
// tests/e2e/multipart_upload.test.ts checks the URLs against wrangler dev's real S3 endpoint.
import { describe, expect, it } from "vitest";
import { makePresigner, presignUrl, URL_TTL_SECONDS } from "../api/lib/s3";

const creds = {
  endpoint: "https://acct.r2.cloudflarestorage.com",
  bucket: "selfsup-artifacts",
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const now = new Date("2026-11-27T21:00:00Z");
const sign = (method: "GET" | "PUT", key: string, extra: { query?: Record<string, string>; endpoint?: string } = {}) =>
  presignUrl(
    { ...creds, endpoint: extra.endpoint ?? creds.endpoint },
    { method, key, expiresIn: 900, now, query: extra.query },
  ).then((u) => new URL(u));

describe("presigned URLs", () => {
  it("are path-style, expire in 900 s, sign only host, and match the former presigner's signatures", async () => {
    const put = await sign("PUT", "staging/datasets/tnt_1/ds_2/data.jsonl");
    expect(`${put.origin}${put.pathname}`).toBe(
      "https://acct.r2.cloudflarestorage.com/selfsup-artifacts/staging/datasets/tnt_1/ds_2/data.jsonl",
    );
    expect(Object.fromEntries(put.searchParams)).toEqual({
      "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
      "X-Amz-Credential": "AKIDEXAMPLE/20261127/auto/s3/aws4_request",
      "X-Amz-Date": "20261127T210000Z",
      "X-Amz-Expires": "900",
      "X-Amz-SignedHeaders": "host",
      "X-Amz-Signature": "4b0d2cd4886e2682434122a88b389f7d5d972938a107900d86c6467e786511c2",
    });
    const odd = await sign("PUT", "datasets/t/d/data (1)+x!.tar.gz", {
      query: { partNumber: "3", uploadId: "up/abc+=" },
    });
    expect(odd.pathname).toBe("/selfsup-artifacts/datasets/t/d/data%20%281%29%2Bx%21.tar.gz");
    expect(odd.searchParams.get("partNumber")).toBe("3");
    expect(odd.searchParams.get("uploadId")).toBe("up/abc+=");
    expect(odd.searchParams.get("X-Amz-Signature")).toBe(
      "f78131e6fe96aa799b316755a60ea01323ca53c956cb02c03d861ddb9b0c2f1a",
    );
    const local = await sign("PUT", "models/t/m/mv_1/model.onnx", {
      endpoint: "http://127.0.0.1:8787/cdn-cgi/local/r2/s3",
    });
    expect(local.pathname).toBe("/cdn-cgi/local/r2/s3/selfsup-artifacts/models/t/m/mv_1/model.onnx");
    expect(local.searchParams.get("X-Amz-Signature")).toBe(
      "b0b631f994047d15251d453bbc1eb444258764ca030e01cd57fdfa09ecf85300",
    );
  });

  it("bind the method, the key and the part: changing any gives another signature", async () => {
    const sig = async (...a: Parameters<typeof sign>) => (await sign(...a)).searchParams.get("X-Amz-Signature");
    const base = await sig("PUT", "staging/datasets/tnt_1/ds_2/data.jsonl");
    const get = await sig("GET", "staging/datasets/tnt_1/ds_2/data.jsonl");
    expect(get).toBe("35317d208bb4b6dbe0d469e3f71c934917cb4c04a045374f3c13e2f3ec6a38d5");
    const others = [
      get,
      await sig("PUT", "datasets/tnt_1/ds_2/data.jsonl"),
      await sig("PUT", "staging/datasets/tnt_1/ds_2/data.jsonl", { query: { partNumber: "1", uploadId: "u" } }),
      await sig("PUT", "staging/datasets/tnt_1/ds_2/data.jsonl", { query: { partNumber: "2", uploadId: "u" } }),
    ];
    expect(new Set([base, ...others]).size).toBe(5);
  });

  it("makePresigner signs for the request's own origin when S3_ENDPOINT is local, valid for 15 minutes", async () => {
    const env = {
      S3_ENDPOINT: "local",
      R2_BUCKET_NAME: "b",
      S3_ACCESS_KEY_ID: "id",
      S3_SECRET_ACCESS_KEY: "secret",
    } as unknown as Env;
    const before = Date.now();
    const s = await makePresigner(env, "http://127.0.0.1:9999")("GET", "a/b.txt");
    expect(s.method).toBe("GET");
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:9999\/cdn-cgi\/local\/r2\/s3\/b\/a\/b\.txt\?/);
    expect(new URL(s.url).searchParams.get("X-Amz-Expires")).toBe(String(URL_TTL_SECONDS));
    expect(URL_TTL_SECONDS).toBe(900);
    const expires = Date.parse(s.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 900_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 900_000);
  });
});
