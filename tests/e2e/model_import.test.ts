// The presigned model import through a real `wrangler dev`: the files go to R2 through the
// presigned PUT URLs of `POST /v1/models/{name}/imports` (its local S3 endpoint checks the SigV4
// signatures as R2 does), then `/complete` verifies, runs the graph once and registers.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localS3Credentials } from "../../scripts/local-s3.mjs";
import { type DevServer, startWranglerDev } from "./wrangler_dev";

const DIR = path.join(import.meta.dirname, "../fixtures/tiny-encoder");
let server: DevServer;

beforeAll(async () => {
  server = await startWranglerDev(localS3Credentials());
});

afterAll(async () => {
  await server?.stop();
});

const call = (p: string, init: RequestInit = {}) =>
  fetch(`${server.url}${p}`, {
    ...init,
    headers: { authorization: `Bearer ${server.key}`, "content-type": "application/json", ...init.headers },
  });

describe("presigned model import (real R2 presigned PUTs)", () => {
  it("uploads every file through its URL, completes once, serves embeddings", async () => {
    const manifest = JSON.parse(readFileSync(path.join(DIR, "manifest.json"), "utf8")) as {
      files: Record<string, unknown>;
    };
    const started = await call("/v1/models/presigned/imports", { method: "POST", body: JSON.stringify({ manifest }) });
    expect(started.status, await started.clone().text()).toBe(201);
    const pending = (await started.json()) as { id: string; uploads: Record<string, { method: string; url: string }> };

    // A PUT with a forged signature is refused by the S3 endpoint.
    const first = Object.entries(pending.uploads)[0] as [string, { url: string }];
    const forged = first[1].url.replace(/X-Amz-Signature=[0-9a-f]{4}/, "X-Amz-Signature=0000");
    expect((await fetch(forged, { method: "PUT", body: readFileSync(path.join(DIR, first[0])) })).ok).toBe(false);

    for (const [name, u] of Object.entries(pending.uploads)) {
      const put = await fetch(u.url, { method: u.method, body: readFileSync(path.join(DIR, name)) });
      expect(put.status, `${name}: ${await put.clone().text()}`).toBe(200);
    }
    const done = await call(`/v1/models/presigned/imports/${pending.id}/complete`, { method: "POST" });
    expect(done.status, await done.clone().text()).toBe(201);
    expect(((await done.json()) as { ref: string }).ref).toBe("presigned@1");
    const again = await call(`/v1/models/presigned/imports/${pending.id}/complete`, { method: "POST" });
    expect(again.status).toBe(200);

    for (const precision of ["fp32", "int8"]) {
      const e = await call("/v1/embeddings", {
        method: "POST",
        body: JSON.stringify({ model: "presigned", input: "Call me Ishmael.", precision }),
      });
      expect(e.status, await e.clone().text()).toBe(200);
      const body = (await e.json()) as { data: { embedding: number[] }[] };
      expect(body.data[0]?.embedding).toHaveLength(128);
    }
  });
});
