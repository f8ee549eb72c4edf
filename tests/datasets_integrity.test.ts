// Bytes that were checked are the bytes later used (issue 14, items 1 and 2): presigned uploads land
// on a staging key that /complete checks and copies to a final key no URL is ever signed for, readers
// never trust a stored object beyond what its check recorded, and a multipart /complete missing a
// part is a retryable 400. A write "through the presigned URL" is a binding PUT to the key that URL
// names: workerd tests have no S3 endpoint (tests/e2e/multipart_upload.test.ts runs real ones).
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { ObjectChanged, promoteObject, stagingKey } from "../api/services/datasets";
import { completeAndWait } from "./dataset_upload";
import { importFixture } from "./fixture";
import { api, expectProblem, newTenant } from "./helpers";
import { fortunes } from "./probe_fixtures";

const enc = new TextEncoder();
const MiB = 2 ** 20;

type Declared = {
  id: string;
  upload:
    | { type: "single"; url: string }
    | { type: "multipart"; uploadId: string; partSize: number; parts: { partNumber: number; url: string }[] };
};

/** The R2 key a presigned URL writes: its path after `/<bucket>/`. */
function signedKey(url: string): string {
  const path = new URL(url).pathname;
  const marker = `/${env.R2_BUCKET_NAME}/`;
  return path
    .slice(path.indexOf(marker) + marker.length)
    .split("/")
    .map(decodeURIComponent)
    .join("/");
}

async function declare(key: string, bytes: Uint8Array, meta: Record<string, unknown> = {}): Promise<Declared> {
  const res = await api("/v1/datasets", {
    method: "POST",
    key,
    json: {
      name: "t",
      modality: "text",
      purpose: "pretrain",
      format: "txt",
      bytes: bytes.byteLength,
      sha256: await sha256Hex(bytes),
      ...meta,
    },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<Declared>();
}

async function putContent(key: string, id: string, bytes: Uint8Array) {
  const res = await api(`/v1/datasets/${id}/content`, {
    method: "PUT",
    key,
    body: bytes,
    headers: { "content-type": "application/octet-stream" },
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

const complete = (key: string, id: string, json?: unknown) =>
  api(`/v1/datasets/${id}/complete`, { method: "POST", key, ...(json ? { json } : {}) });

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** `gz` grown to exactly `size` bytes by a gzip comment (FCOMMENT): same length, same content. */
function padGzip(gz: Uint8Array, size: number): Uint8Array {
  const pad = size - gz.byteLength - 1;
  if (pad < 0) throw new Error(`gzip of ${gz.byteLength} bytes does not fit in ${size}`);
  const out = new Uint8Array(size);
  out.set(gz.subarray(0, 10));
  out[3] = (out[3] as number) | 0x10;
  out.fill(0x61, 10, 10 + pad);
  out[10 + pad] = 0;
  out.set(gz.subarray(10), 11 + pad);
  return out;
}

async function storedSha(key: string): Promise<string | null> {
  const obj = await env.ARTIFACTS.get(key);
  return obj ? sha256Hex(new Uint8Array(await obj.arrayBuffer())) : null;
}

// Labeled fortune quotes (4 classes) as a jsonl probe set.
const set = fortunes();
const allLines = (set.texts as string[]).map((text, i) =>
  JSON.stringify({ text, label: set.labelNames[set.y[i] as number] }),
);
const probeLines = allLines.slice(0, 120);

describe("dataset integrity", () => {
  it("a presigned PUT after /complete lands on the staging key: the checked bytes stay, probes read them", async () => {
    const { secret, tenantId } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    const bytes = enc.encode(`${probeLines.join("\n")}\n`);
    const d = await declare(secret, bytes, { purpose: "probe", format: "jsonl" });
    if (d.upload.type !== "single") throw new Error("expected a single PUT");
    const signed = signedKey(d.upload.url);
    const final = `datasets/${tenantId}/${d.id}/data.jsonl`;
    expect(signed).not.toBe(final);
    await putContent(secret, d.id, bytes);
    const checked = await completeAndWait(secret, d.id);
    expect(checked.res.status).toBe(202);
    expect(checked.dataset.status).toBe("ready");
    expect(await env.ARTIFACTS.head(signed)).toBeNull(); // moved, not copied and left

    // The URL is valid for 15 minutes: same length, other bytes, not JSON.
    await env.ARTIFACTS.put(signed, "x".repeat(bytes.byteLength));
    expect(await storedSha(final)).toBe(await sha256Hex(bytes));
    const row = await (await api(`/v1/datasets/${d.id}`, { key: secret })).json<{ status: string; sha256: string }>();
    expect(row).toMatchObject({ status: "ready", sha256: await sha256Hex(bytes) });
    // A second /complete does not pick the staging object up either.
    expect((await complete(secret, d.id)).status).toBe(200);
    expect(await storedSha(final)).toBe(await sha256Hex(bytes));

    const res = await api("/v1/probes", {
      method: "POST",
      key: secret,
      json: { model: "tiny", kind: "knn", train: { dataset: d.id }, test: { split: 0.25, seed: 0 } },
    });
    // A probe over a dataset may fit in the background (202, then poll GET until it leaves `fitting`).
    expect([201, 202], await res.clone().text()).toContain(res.status);
    let fitted = await res.json<{ id: string; status?: string; n_train: number; n_test: number }>();
    for (let i = 0; fitted.status === "fitting" && i < 2000; i++) {
      await new Promise((r) => setTimeout(r, 25));
      fitted = await (await api(`/v1/probes/${fitted.id}`, { key: secret })).json<typeof fitted>();
    }
    expect(fitted.n_train + fitted.n_test).toBe(120);
  });

  it("after DELETE a presigned PUT recreates no tracked object", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const bytes = enc.encode("one\ntwo\n");
    const d = await declare(secret, bytes);
    if (d.upload.type !== "single") throw new Error("expected a single PUT");
    await putContent(secret, d.id, bytes);
    expect((await api(`/v1/datasets/${d.id}`, { method: "DELETE", key: secret })).status).toBe(200);
    await env.ARTIFACTS.put(signedKey(d.upload.url), bytes);
    expect(await env.ARTIFACTS.head(`datasets/${tenantId}/${d.id}/data.txt`)).toBeNull();
    await expectProblem(await complete(secret, d.id), 404);
    const list = await (await api("/v1/datasets", { key: secret })).json<{ data: unknown[] }>();
    expect(list.data).toEqual([]);
  });

  it("a ready set whose stored object changed (a same-size gzip bomb) is a 409, read no further than its checked size", async () => {
    const { secret, tenantId } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    const gz = await gzip(enc.encode(`${allLines.join("\n")}\n`));
    const d = await declare(secret, gz, { purpose: "probe", format: "jsonl.gz" });
    await putContent(secret, d.id, gz);
    const ready = { stats: (await completeAndWait(secret, d.id)).dataset.stats as { decompressed_bytes: number } };
    // 4 MiB of valid records (100x the real set) in fewer compressed bytes, padded to its exact size.
    const line = `${JSON.stringify({ text: "a whale", label: "sea" })}\n`;
    const bomb = padGzip(await gzip(enc.encode(line.repeat(Math.ceil((4 * MiB) / line.length)))), gz.byteLength);
    await env.ARTIFACTS.put(`datasets/${tenantId}/${d.id}/data.jsonl.gz`, bomb);

    const p = await expectProblem(
      await api("/v1/probes", {
        method: "POST",
        key: secret,
        json: { model: "tiny", kind: "knn", train: { dataset: d.id } },
      }),
      409,
    );
    expect(p.detail).toContain(`not the ones its check read (more than the ${ready.stats.decompressed_bytes} bytes`);
    expect(p.errors?.[0]?.path).toBe("train.dataset");

    // A different size is caught before any read; so is garbage that is not JSON.
    await env.ARTIFACTS.put(`datasets/${tenantId}/${d.id}/data.jsonl.gz`, bomb.subarray(1));
    const q = await expectProblem(
      await api("/v1/probes", {
        method: "POST",
        key: secret,
        json: { model: "tiny", kind: "knn", train: { dataset: d.id } },
      }),
      409,
    );
    expect(q.detail).toContain(`${gz.byteLength - 1} bytes, ${gz.byteLength} were checked`);
  });

  it("a multipart /complete missing the last part is a 400 naming it; the upload stays retryable", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const lines: string[] = [];
    let size = 0;
    for (let i = 0; size <= 64 * MiB; i++) {
      const l = `${i} Call me Ishmael. Some years ago, never mind how long precisely, having little money.`;
      lines.push(l);
      size += l.length + 1;
    }
    const bytes = enc.encode(`${lines.join("\n")}\n`);
    const d = await declare(secret, bytes);
    if (d.upload.type !== "multipart") throw new Error("expected a multipart upload");
    const { uploadId, partSize, parts: signed } = d.upload;
    expect(signed).toHaveLength(9);
    expect(signedKey((signed[0] as { url: string }).url)).toBe(stagingKey(`datasets/${tenantId}/${d.id}/data.txt`));
    const upload = env.ARTIFACTS.resumeMultipartUpload(signedKey((signed[0] as { url: string }).url), uploadId);
    const parts: { partNumber: number; etag: string }[] = [];
    for (let n = 1; n <= 9; n++) {
      const part = await upload.uploadPart(n, bytes.subarray((n - 1) * partSize, n * partSize));
      parts.push({ partNumber: part.partNumber, etag: `"${part.etag}"` });
    }

    const p = await expectProblem(await complete(secret, d.id, { parts: parts.slice(0, 8) }), 400);
    expect(p.detail).toContain("part 9 of 9 missing");
    expect(p.errors).toEqual([{ path: "parts", message: "missing part 9" }]);
    const gaps = await expectProblem(await complete(secret, d.id, { parts: [parts[0], parts[4]] }), 400);
    expect(gaps.errors?.[0]?.message).toBe("missing parts 2-4, 6-9");
    const row = await (await api(`/v1/datasets/${d.id}`, { key: secret })).json<{ status: string }>();
    expect(row.status).toBe("uploading");

    const { res, dataset } = await completeAndWait(secret, d.id, { parts });
    expect(res.status, await res.clone().text()).toBe(202);
    expect(dataset.status).toBe("ready");
    // The checked bytes moved to the final key (a multipart copy), and nothing is left staged.
    const final = await env.ARTIFACTS.head(`datasets/${tenantId}/${d.id}/data.txt`);
    expect(final?.size).toBe(bytes.byteLength);
    expect(await env.ARTIFACTS.head(stagingKey(`datasets/${tenantId}/${d.id}/data.txt`))).toBeNull();
  }, 120_000);

  it("promoteObject copies exactly the checked version, in parts too, and refuses a replaced one", async () => {
    const bytes = new Uint8Array(11 * MiB);
    for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
    const src = "staging/test/promote";
    const head = await env.ARTIFACTS.put(src, bytes);
    if (!head) throw new Error("put returned no object");
    const version = { key: src, etag: head.etag, size: bytes.byteLength };
    const sha = await sha256Hex(bytes);
    await promoteObject(env.ARTIFACTS, version, "test/promote-parts", sha, 5 * MiB);
    expect(await storedSha("test/promote-parts")).toBe(sha);
    await promoteObject(env.ARTIFACTS, version, "test/promote-single", sha);
    expect(await storedSha("test/promote-single")).toBe(sha);
    const single = await env.ARTIFACTS.head("test/promote-single");
    expect(single?.customMetadata?.sha256).toBe(sha);

    await env.ARTIFACTS.put(src, bytes.subarray(1));
    await expect(promoteObject(env.ARTIFACTS, version, "test/promote-late", sha, 5 * MiB)).rejects.toBeInstanceOf(
      ObjectChanged,
    );
    await expect(promoteObject(env.ARTIFACTS, version, "test/promote-late", sha)).rejects.toBeInstanceOf(ObjectChanged);
    expect(await env.ARTIFACTS.head("test/promote-late")).toBeNull();
  });
});
