import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { planUpload, stagingKey } from "../api/services/datasets";
import { completeAndWait, expectInvalid } from "./dataset_upload";
import corpus from "./fixtures/corpus/moby-dick-excerpt.txt?raw";
import { api, expectProblem, newTenant } from "./helpers";

const enc = new TextEncoder();

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function declare(key: string, bytes: Uint8Array, extra: Record<string, unknown> = {}) {
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
      ...extra,
    },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<{ id: string; status: string; upload: { type: string; url: string; method: string } }>();
}

async function upload(key: string, bytes: Uint8Array, extra: Record<string, unknown> = {}) {
  const d = await declare(key, bytes, extra);
  const put = await api(`/v1/datasets/${d.id}/content`, {
    method: "PUT",
    key,
    body: bytes,
    headers: { "content-type": "application/octet-stream" },
  });
  expect(put.status, await put.clone().text()).toBe(200);
  return { id: d.id, complete: () => completeAndWait(key, d.id) };
}

describe("datasets", () => {
  it("a real corpus goes uploading -> ready with stats, and a presigned PUT is offered", async () => {
    const { secret } = await newTenant(["train"]);
    const bytes = enc.encode(corpus);
    const d = await declare(secret, bytes);
    expect(d.status).toBe("uploading");
    expect(d.upload.type).toBe("single");
    expect(d.upload.method).toBe("PUT");
    const url = new URL(d.upload.url);
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    expect(url.pathname).toContain(`/datasets/`);

    await api(`/v1/datasets/${d.id}/content`, {
      method: "PUT",
      key: secret,
      body: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
    const { res, dataset } = await completeAndWait(secret, d.id);
    expect(res.status, await res.clone().text()).toBe(202);
    expect((await res.json<{ status: string }>()).status).toBe("validating");
    const ready = dataset as typeof dataset & {
      stats: { lines: number; records: number; duplicates: number; max_length: number };
    };
    expect(ready.status).toBe("ready");
    const lines = corpus.split("\n");
    const nonEmpty = lines.filter((l) => l.trim() !== "");
    expect(ready.stats.lines).toBe(corpus.endsWith("\n") ? lines.length - 1 : lines.length);
    expect(ready.stats.records + ready.stats.duplicates).toBe(nonEmpty.length);
    expect(ready.stats.records).toBe(new Set(nonEmpty).size);
    expect(ready.stats.duplicates).toBeGreaterThan(0);
    expect(ready.stats.max_length).toBe(Math.max(...nonEmpty.map((l) => l.length)));

    const list = await (await api("/v1/datasets?status=ready", { key: secret })).json<{ data: { id: string }[] }>();
    expect(list.data.map((x) => x.id)).toEqual([d.id]);
  });

  it("gzip and jsonl parse; a probe set counts labels", async () => {
    const { secret } = await newTenant(["train"]);
    const gz = await gzip(enc.encode(corpus));
    const a = await upload(secret, gz, { format: "txt.gz" });
    expect((await a.complete()).dataset.status).toBe("ready");

    const probe = [
      '{"text":"a whale","label":"sea"}',
      '{"text":"a ship","label":"sea"}',
      '{"text":"a horse","label":"land"}',
    ].join("\n");
    const b = await upload(secret, enc.encode(probe), { format: "jsonl", purpose: "probe" });
    const ready = (await b.complete()).dataset;
    expect(ready.status).toBe("ready");
    expect(ready.stats?.labels).toEqual({ land: 1, sea: 2 });
  });

  const invalid: [string, () => Promise<Uint8Array>, Record<string, unknown>, RegExp][] = [
    [
      "bad UTF-8 names the line",
      async () => new Uint8Array([...enc.encode("fine\nalso fine\n"), 0xff, 0xfe, 0x0a]),
      {},
      /line 3: not valid UTF-8/,
    ],
    ["truncated gzip", async () => (await gzip(enc.encode(corpus))).subarray(0, 5000), { format: "txt.gz" }, /gzip/],
    [
      "a line longer than 1 MiB",
      async () => enc.encode(`ok\n${"x".repeat(1_100_000)}\nfine\n`),
      {},
      /line 2: longer than 1048576 bytes/,
    ],
    ["only blank lines", async () => enc.encode("\n  \n\n"), {}, /no usable record/],
    [
      "jsonl without text",
      async () => enc.encode('{"text":"ok"}\n{"body":"no"}\n'),
      { format: "jsonl" },
      /line 2: missing a string "text"/,
    ],
    [
      "probe set with one label",
      async () => enc.encode('{"text":"a","label":1}\n{"text":"b","label":1}\n'),
      { format: "jsonl", purpose: "probe" },
      /at least 2 labels/,
    ],
  ];
  for (const [name, make, extra, detail] of invalid) {
    it(`marks the dataset invalid: ${name}`, async () => {
      const { secret } = await newTenant(["train"]);
      const d = await upload(secret, await make(), extra);
      const p = await expectInvalid(await d.complete());
      expect(p.detail).toMatch(detail);
      const row = await (await api(`/v1/datasets/${d.id}`, { key: secret })).json<{
        status: string;
        errors: unknown[];
      }>();
      expect(row.status).toBe("invalid");
      expect(row.errors.length).toBeGreaterThan(0);
    });
  }

  it("a body whose sha256 differs from the declared one is refused and nothing is stored", async () => {
    const { secret } = await newTenant(["train"]);
    const d = await declare(secret, enc.encode("one\ntwo\n"));
    const p = await expectProblem(
      await api(`/v1/datasets/${d.id}/content`, {
        method: "PUT",
        key: secret,
        body: enc.encode("one\ntwx\n"),
        headers: { "content-type": "application/octet-stream" },
      }),
      400,
    );
    expect(p.errors?.[0]?.path).toBe("sha256");
    await expectProblem(await api(`/v1/datasets/${d.id}/complete`, { method: "POST", key: secret }), 409);
  });

  it("an object replaced behind the API's back fails the sha256 check at completion", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const d = await declare(secret, enc.encode("one\ntwo\n"));
    // Presigned PUTs write the staging key; /complete checks it before anything reads it.
    await env.ARTIFACTS.put(stagingKey(`datasets/${tenantId}/${d.id}/data.txt`), "one\ntwx\n");
    const p = await expectInvalid(await completeAndWait(secret, d.id));
    expect(p.detail).toContain("sha256");
  });

  it("rejects wrong modality, unknown formats and bad fields with the field named", async () => {
    const { secret } = await newTenant(["train"]);
    const base = { name: "x", modality: "text", purpose: "pretrain", format: "txt", bytes: 10, sha256: "0".repeat(64) };
    expect(
      (
        await expectProblem(
          await api("/v1/datasets", { method: "POST", key: secret, json: { ...base, modality: "image" } }),
          422,
        )
      ).errors?.[0]?.path,
    ).toBe("format"); // image datasets exist; `txt` is not one of their formats
    expect(
      (
        await expectProblem(
          await api("/v1/datasets", { method: "POST", key: secret, json: { ...base, format: "csv" } }),
          422,
        )
      ).errors?.[0]?.path,
    ).toBe("format");
    expect(
      (
        await expectProblem(
          await api("/v1/datasets", { method: "POST", key: secret, json: { ...base, sha256: "abc" } }),
          400,
        )
      ).errors?.[0]?.path,
    ).toBe("sha256");
    expect(
      (
        await expectProblem(
          await api("/v1/datasets", { method: "POST", key: secret, json: { ...base, bytes: 0 } }),
          400,
        )
      ).errors?.[0]?.path,
    ).toBe("bytes");
  });

  it("another tenant's dataset is a 404; delete hides it and removes the bytes", async () => {
    const a = await newTenant(["train"]);
    const b = await newTenant(["train"]);
    const d = await upload(a.secret, enc.encode("x\ny\n"));
    await expectProblem(await api(`/v1/datasets/${d.id}`, { key: b.secret }), 404);
    await expectProblem(await api(`/v1/datasets/${d.id}`, { method: "DELETE", key: b.secret }), 404);
    expect((await api(`/v1/datasets/${d.id}`, { method: "DELETE", key: a.secret })).status).toBe(200);
    await expectProblem(await api(`/v1/datasets/${d.id}`, { key: a.secret }), 404);
    expect(await env.ARTIFACTS.head(`datasets/${a.tenantId}/${d.id}/data.txt`)).toBeNull();
  });

  it("large uploads are planned as R2-legal multipart uploads", () => {
    expect(planUpload(10 * 2 ** 20)).toEqual({ kind: "single" });
    const mib = 2 ** 20;
    for (const bytes of [65 * mib, 10 * 2 ** 30, 4 * 2 ** 40]) {
      const p = planUpload(bytes);
      if (p.kind !== "multipart") throw new Error("expected multipart");
      expect(p.partSize).toBeGreaterThanOrEqual(5 * mib);
      expect(p.partSize).toBeLessThanOrEqual(5 * 2 ** 30);
      expect(p.parts).toBeLessThanOrEqual(10_000);
      expect(p.parts * p.partSize).toBeGreaterThanOrEqual(bytes);
      expect((p.parts - 1) * p.partSize).toBeLessThan(bytes);
    }
  });
});
