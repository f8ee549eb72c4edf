// A dataset above the single-PUT limit goes up as an R2 multipart upload through presigned UploadPart
// URLs (wrangler dev's S3 endpoint verifies them like R2 does), survives an interruption by resuming
// with the parts already sent, and is checked in the background after /complete (wrangler dev runs
// the work queue's consumer locally). Presigned URLs write a staging key: a
// PUT through one after /complete or DELETE changes no tracked bytes (read back with `wrangler r2`).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadDataset } from "../../cli/upload";
import { createSelfsupClient, type SelfsupClient, unwrap } from "../../client";
import { localS3Credentials } from "../../scripts/local-s3.mjs";
import { type DevServer, startWranglerDev } from "./wrangler_dev";

const ROOT = path.join(import.meta.dirname, "../..");
const work = mkdtempSync(path.join(tmpdir(), "selfsup-multipart-"));
let server: DevServer;
let client: SelfsupClient;

beforeAll(async () => {
  server = await startWranglerDev(localS3Credentials());
  client = createSelfsupClient({ baseUrl: server.url, apiKey: server.key });
});

afterAll(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("multipart dataset upload", () => {
  it("uploads a 70 MiB corpus in parts, resumes after an interruption, and checks it", async () => {
    // Real text, numbered so that lines stay distinct: the excerpt repeated past 64 MiB.
    const lines = readFileSync(path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "");
    const out: string[] = [];
    let bytes = 0;
    for (let i = 0; bytes < 70 * 2 ** 20; i++) {
      const line = `${i} ${lines[i % lines.length]}`;
      out.push(line);
      bytes += Buffer.byteLength(line) + 1;
    }
    const file = path.join(work, "big.txt");
    writeFileSync(file, `${out.join("\n")}\n`);
    const stateDir = path.join(work, "state");

    // Interrupt after two parts: every later PUT to R2 fails as if the connection dropped.
    const realFetch = globalThis.fetch;
    let puts = 0;
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.method === "PUT" && ++puts > 2) throw new TypeError("network down");
      return realFetch(input, init);
    }) as typeof fetch;
    try {
      await expect(uploadDataset(client, server.url, file, { purpose: "pretrain", stateDir })).rejects.toThrow(
        "network down",
      );
    } finally {
      globalThis.fetch = realFetch;
    }
    const states = readFileSync(
      path.join(stateDir, "uploads", `${(await unwrap(client.GET("/v1/datasets"))).data[0]?.sha256}.json`),
      "utf8",
    );
    expect(Object.keys(JSON.parse(states).parts)).toEqual(["1", "2"]);

    let sent = 0;
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.method === "PUT") sent++;
      return realFetch(input, init);
    }) as typeof fetch;
    let dataset: Awaited<ReturnType<typeof uploadDataset>>;
    try {
      dataset = await uploadDataset(client, server.url, file, { purpose: "pretrain", stateDir });
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(sent).toBe(Math.ceil(bytes / (8 * 2 ** 20)) - 2); // only the missing parts went up again
    expect(dataset.status).toBe("ready");
    expect(dataset.bytes).toBe(bytes);
    expect((dataset.stats as { records: number; duplicates: number }).records).toBe(out.length);
    const all = await unwrap(client.GET("/v1/datasets"));
    expect(all.data).toHaveLength(1);
  }, 300_000);

  it("a presigned PUT after /complete or DELETE replaces no checked bytes and recreates no object", async () => {
    const headers = { authorization: `Bearer ${server.key}`, "content-type": "application/json" };
    const api = (p: string, init: RequestInit = {}) => fetch(`${server.url}${p}`, { ...init, headers });
    /** The bytes of `key` in wrangler dev's local R2, or null when there is no such object. */
    const stored = (key: string): Buffer | null => {
      const out = path.join(work, `get-${Math.random().toString(36).slice(2)}`);
      try {
        execFileSync(
          path.join(ROOT, "node_modules/.bin/wrangler"),
          [
            "r2",
            "object",
            "get",
            `selfsup-artifacts/${key}`,
            "--file",
            out,
            "--local",
            "--persist-to",
            server.persistDir,
          ],
          { cwd: ROOT, stdio: "ignore", env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" } },
        );
      } catch {
        return null;
      }
      return existsSync(out) ? readFileSync(out) : null;
    };
    const bytes = Buffer.from("Call me Ishmael.\nSome years ago.\n");
    const other = Buffer.from("x".repeat(bytes.length));
    const declare = async () => {
      const res = await api("/v1/datasets", {
        method: "POST",
        body: JSON.stringify({
          name: "late",
          modality: "text",
          purpose: "pretrain",
          format: "txt",
          bytes: bytes.length,
          sha256: createHash("sha256").update(bytes).digest("hex"),
        }),
      });
      expect(res.status).toBe(201);
      return (await res.json()) as { id: string; upload: { url: string } };
    };
    const put = (url: string, body: Buffer) => fetch(url, { method: "PUT", body: new Uint8Array(body) });

    const d = await declare();
    const signed = decodeURIComponent(new URL(d.upload.url).pathname.split("/selfsup-artifacts/")[1] ?? "");
    expect(signed).toMatch(/^staging\/datasets\//);
    const final = signed.slice("staging/".length);
    expect((await put(d.upload.url, bytes)).status).toBe(200);
    expect((await api(`/v1/datasets/${d.id}/complete`, { method: "POST" })).status).toBe(202);
    // The check runs on wrangler dev's local queue; the bytes move once it says `ready`.
    let checked = { status: "validating" };
    for (let i = 0; checked.status === "validating" && i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      checked = (await (await api(`/v1/datasets/${d.id}`)).json()) as { status: string };
    }
    expect(checked.status).toBe("ready");
    expect(stored(final)).toEqual(bytes);
    // The URL still works for its 15 minutes; it writes only the staging key.
    expect((await put(d.upload.url, other)).status).toBe(200);
    expect(stored(final)).toEqual(bytes);
    const row = (await (await api(`/v1/datasets/${d.id}`)).json()) as { status: string };
    expect(row.status).toBe("ready");

    const gone = await declare();
    expect((await put(gone.upload.url, bytes)).status).toBe(200);
    expect((await api(`/v1/datasets/${gone.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await put(gone.upload.url, bytes)).status).toBe(200);
    const goneKey = decodeURIComponent(new URL(gone.upload.url).pathname.split("/selfsup-artifacts/")[1] ?? "");
    expect(stored(goneKey.slice("staging/".length))).toBeNull();
    expect((await api(`/v1/datasets/${gone.id}/complete`, { method: "POST" })).status).toBe(404);
  }, 120_000);
});
