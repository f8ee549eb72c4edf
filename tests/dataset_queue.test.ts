// Dataset checks on the work queue (issue 15): /complete answers 202 and the real queue's consumer
// (the Worker's `queue` handler, which the Workers test pool delivers WORK messages to) decides;
// a step that crashes resumes from its stored cursor without re-reading what it already hashed;
// a small chunk size makes a check take several messages; a lost or given-up check restarts.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { makeDb } from "../api/db";
import { makeDatasetCheckWork } from "../api/services/background/dataset_check_work";
import type { WorkDeps, WorkMessage } from "../api/services/background/work";
import { type CheckResult, checkTextDataset } from "../api/services/dataset_check";
import { restartIfStale, startCheck } from "../api/services/dataset_check_queue";
import { checkSeriesDataset } from "../api/services/dataset_check_series";
import { CHECK_CHUNK_BYTES, checkStateKey } from "../api/services/dataset_check_state";
import { stagingKey } from "../api/services/datasets";
import { Storage } from "../api/services/storage";
import { parseSettings } from "../api/settings";
import { completeAndWait, type DatasetBody, expectInvalid, uploadOnly, waitForCheck } from "./dataset_upload";
import corpus from "./fixtures/corpus/moby-dick-excerpt.txt?raw";
import { api, newTenant } from "./helpers";

const enc = new TextEncoder();
const KiB = 1024;
const MiB = KiB * KiB;

const stream = (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>]).stream();

/** A queue that records what is sent, for driving the consumer by hand. */
function recordingQueue() {
  const sent: WorkMessage[] = [];
  const queue = { send: async (body: WorkMessage) => void sent.push(body) } as unknown as Queue<WorkMessage>;
  return { sent, queue };
}

/**
 * The real bucket, with every ranged read of `key` reported to `onRange` first (which may throw:
 * a read that fails the way a dying invocation or an R2 fault would).
 */
function watchedBucket(key: string, onRange: (offset: number, length: number) => void): R2Bucket {
  const inner = env.ARTIFACTS;
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "get") {
        return async (k: string, opts?: R2GetOptions) => {
          const r = opts?.range as { offset: number; length: number } | undefined;
          if (k === key && r) onRange(r.offset, r.length);
          return target.get(k, opts);
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

const depsWith = (bucket: R2Bucket): WorkDeps => ({
  db: makeDb(env.DB),
  storage: new Storage(bucket),
  settings: parseSettings(env),
});

async function row(key: string, id: string): Promise<DatasetBody> {
  return (await api(`/v1/datasets/${id}`, { key })).json<DatasetBody>();
}

/** Claims an uploaded dataset for a check the way /complete does, but with messages kept here. */
async function claim(tenantId: string, id: string) {
  const db = makeDb(env.DB);
  const d = await db.query.datasets.findFirst({ where: (t, { eq }) => eq(t.id, id) });
  if (!d) throw new Error(`no dataset ${id}`);
  const head = await env.ARTIFACTS.head(stagingKey(d.objectKey));
  if (!head) throw new Error("nothing staged");
  const { sent, queue } = recordingQueue();
  const claimed = await startCheck(db, queue, d, { key: stagingKey(d.objectKey), etag: head.etag, size: head.size });
  expect(claimed?.status).toBe("validating");
  expect(sent).toEqual([{ kind: "dataset_check", tenantId, id }]);
  return { msg: sent[0] as WorkMessage, objectKey: d.objectKey };
}

/** A labeled jsonl set of ~450 KB: duplicates, blank and CRLF lines, multi-byte UTF-8 across chunk cuts. */
function labeledJsonl(): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    if (i % 97 === 0) lines.push("");
    const line = JSON.stringify({ text: `whale ${i % 500} ✓ café ${"é".repeat(i % 7)}`, label: `c${i % 3}` });
    lines.push(i % 13 === 0 ? `${line}\r` : line);
  }
  return enc.encode(`${lines.join("\n")}\n`);
}

describe("dataset checks on the work queue", () => {
  it("/complete answers 202; the queue's consumer checks an 18 MiB set in steps to the same stats as one pass", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const parts: string[] = [];
    for (let n = 0; n < 18 * MiB; n += corpus.length + 1) parts.push(corpus);
    const bytes = enc.encode(`${parts.join("\n")}\n`);
    const id = await uploadOnly(secret, bytes, { modality: "text", format: "txt" });

    const res = await api(`/v1/datasets/${id}/complete`, { method: "POST", key: secret });
    expect(res.status, await res.clone().text()).toBe(202);
    const started = await res.json<DatasetBody>();
    expect(started.status).toBe("validating");
    expect(started.check).toMatchObject({ bytes_done: 0, bytes_total: bytes.byteLength });
    // Asking again while it runs starts nothing new and answers the same.
    const again = await api(`/v1/datasets/${id}/complete`, { method: "POST", key: secret });
    expect(again.status).toBe(202);
    expect((await again.json<DatasetBody>()).status).toBe("validating");

    const seen: number[] = [];
    let d = await row(secret, id);
    while (d.status === "validating") {
      expect(d.check?.bytes_total).toBe(bytes.byteLength);
      seen.push(d.check?.bytes_done as number);
      await new Promise((r) => setTimeout(r, 20));
      d = await row(secret, id);
    }
    expect(d.status, JSON.stringify(d.errors)).toBe("ready");
    expect(d.check).toBeNull();
    expect(seen).toEqual([...seen].sort((a, b) => a - b)); // progress only grows
    expect(seen.some((n) => n === CHECK_CHUNK_BYTES)).toBe(true); // the first step was stored and shown

    const direct = await checkTextDataset(stream(bytes), { format: "txt", purpose: "pretrain" });
    expect(direct.errors).toEqual([]);
    expect(d.stats).toEqual(direct.stats);
    // The steps wrote the checked bytes as multipart parts; completing the upload made the object.
    const stored = await env.ARTIFACTS.get(`datasets/${tenantId}/${id}/data.txt`);
    expect(stored?.size).toBe(bytes.byteLength);
    const sha = (b: ArrayBuffer | Uint8Array) => crypto.subtle.digest("SHA-256", b);
    expect(new Uint8Array(await sha(await (stored as R2ObjectBody).arrayBuffer()))).toEqual(
      new Uint8Array(await sha(bytes)),
    );
    expect(stored?.customMetadata?.sha256).toBe(d.sha256);
  }, 120_000);

  it("an invalid set ends `invalid` with the same errors and stats as one pass, however it is cut", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    // Time series: bad cells spread over the file, a channel mismatch, a probe label missing.
    const rows = ["t0,t1,t2,label"];
    for (let i = 0; i < 3000; i++) {
      const cells = [i, i + 1, i + 2].map(String);
      if (i % 500 === 7) cells[1] = "NaN";
      if (i % 700 === 9) cells[0] = "n/a";
      rows.push(`${cells.join(",")},${i === 1234 ? "" : `k${i % 4}`}`);
    }
    const csv = enc.encode(`${rows.join("\n")}\n`);
    const viaQueue = await completeAndWait(secret, await uploadOnly(secret, csv, seriesMeta));
    const p = await expectInvalid(viaQueue);
    const direct = await checkSeriesDataset(stream(csv), { format: "csv", purpose: "probe" });
    expect(viaQueue.dataset.errors).toEqual(direct.errors);
    expect(viaQueue.dataset.stats).toEqual(direct.stats);
    expect(p.errors[0]?.path).toBe("line 9, column t1");

    // The same file, and a text file with a 1.1 MB line, in 4 KiB / 256 KiB steps by hand.
    const long = enc.encode(`ok\n${"x".repeat(1_100_000)}\nfine\n`);
    const cases: [Uint8Array, { modality: string; format: string; purpose?: "probe" }, number, CheckResult<unknown>][] =
      [
        [csv, seriesMeta, 4 * KiB, direct],
        [long, { modality: "text", format: "txt" }, 256 * KiB, await checkTextDataset(stream(long), txt)],
      ];
    for (const [bytes, meta, chunkBytes, expected] of cases) {
      const id = await uploadOnly(secret, bytes, meta);
      const { msg } = await claim(tenantId, id);
      const work = makeDatasetCheckWork({ chunkBytes });
      let steps = 1;
      while ((await work.chunk(depsWith(env.ARTIFACTS), msg)) === "more") steps++;
      expect(steps).toBe(Math.ceil(bytes.byteLength / chunkBytes));
      const d = await row(secret, id);
      expect(d.status).toBe("invalid");
      expect(d.errors).toEqual(expected.errors);
      expect(d.stats).toEqual(expected.stats);
    }
  });

  it("steps that write parts as they go complete the upload only for a valid set; an invalid one leaves no object", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const line = "Call me Ishmael. Some years ago, never mind how long precisely.\n";
    const body = enc.encode(line.repeat(Math.ceil((11 * MiB) / line.length)));
    const bad = new Uint8Array(body.length + 3);
    bad.set(body);
    bad.set([0xff, 0xfe, 0x0a], body.length); // invalid UTF-8 on the last line, in the last step
    const work = makeDatasetCheckWork({ chunkBytes: 5 * MiB });
    for (const [bytes, status] of [
      [body, "ready"],
      [bad, "invalid"],
    ] as const) {
      const id = await uploadOnly(secret, bytes, { modality: "text", format: "txt" });
      const { msg, objectKey } = await claim(tenantId, id);
      let steps = 1;
      while ((await work.chunk(depsWith(env.ARTIFACTS), msg)) === "more") steps++;
      expect(steps).toBe(3);
      const d = await row(secret, id);
      expect(d.status).toBe(status);
      const final = await env.ARTIFACTS.get(objectKey);
      if (status === "ready") {
        expect(final?.size).toBe(bytes.byteLength);
        expect(new Uint8Array(await (final as R2ObjectBody).arrayBuffer())).toEqual(bytes);
      } else {
        expect(final).toBeNull();
        expect(d.errors?.[0]?.line).toBe(body.length / line.length + 1);
      }
      expect(await env.ARTIFACTS.head(stagingKey(objectKey))).toBeNull();
    }
  });

  it("a step that crashes mid-check resumes from the stored cursor: nothing hashed is read again", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const bytes = labeledJsonl();
    const id = await uploadOnly(secret, bytes, { modality: "text", format: "jsonl", purpose: "probe" });
    const { msg, objectKey } = await claim(tenantId, id);
    const staged = stagingKey(objectKey);
    const chunkBytes = 64 * KiB;
    const work = makeDatasetCheckWork({ chunkBytes });

    // Two steps succeed; the third read fails the way a dying invocation would.
    const before: number[] = [];
    const failing = watchedBucket(staged, (offset) => {
      if (before.length === 2) throw new Error("injected: R2 read failed");
      before.push(offset);
    });
    expect(await work.chunk(depsWith(failing), msg)).toBe("more");
    expect(await work.chunk(depsWith(failing), msg)).toBe("more");
    await expect(work.chunk(depsWith(failing), msg)).rejects.toThrow(/injected/);
    expect(before).toEqual([0, chunkBytes]);
    const mid = await row(secret, id);
    expect(mid.status).toBe("validating");
    expect(mid.check?.bytes_done).toBe(2 * chunkBytes);

    // The retry (a fresh invocation) goes on from byte 128 Ki.
    const after: number[] = [];
    const counting = watchedBucket(staged, (offset, length) => {
      after.push(offset);
      expect(length).toBeLessThanOrEqual(chunkBytes);
    });
    let steps = 1;
    while ((await work.chunk(depsWith(counting), msg)) === "more") steps++;
    const expectedOffsets = [];
    for (let o = 2 * chunkBytes; o < bytes.byteLength; o += chunkBytes) expectedOffsets.push(o);
    expect(after).toEqual(expectedOffsets);
    expect(steps).toBe(expectedOffsets.length);

    const d = await row(secret, id);
    expect(d.status, JSON.stringify(d.errors)).toBe("ready"); // the resumed SHA-256 matched the declared one
    const direct = await checkTextDataset(stream(bytes), { format: "jsonl", purpose: "probe" });
    expect(d.stats).toEqual(direct.stats);
    expect(d.stats?.labels).toEqual({ c0: 3334, c1: 3333, c2: 3333 });
    // The checked bytes are the dataset's object; the staged upload and the cursor are gone.
    const final = await env.ARTIFACTS.get(objectKey);
    expect(new Uint8Array((await final?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes);
    expect(await env.ARTIFACTS.head(staged)).toBeNull();
    expect(await env.ARTIFACTS.head(checkStateKey(objectKey))).toBeNull();
    // A duplicate message for the finished check changes nothing.
    expect(await work.chunk(depsWith(env.ARTIFACTS), msg)).toBe("done");
  });

  it("given up after repeated failures, the set goes back to `uploading`; /complete resumes it on the queue", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const bytes = labeledJsonl();
    const id = await uploadOnly(secret, bytes, { modality: "text", format: "jsonl", purpose: "probe" });
    const { msg } = await claim(tenantId, id);
    const work = makeDatasetCheckWork({ chunkBytes: 64 * KiB });
    expect(await work.chunk(depsWith(env.ARTIFACTS), msg)).toBe("more");
    await work.giveUp(depsWith(env.ARTIFACTS), msg, new Error("R2 is down"));
    const released = await row(secret, id);
    expect(released.status).toBe("uploading");
    expect(released.errors?.[0]?.message).toMatch(/failed repeatedly \(R2 is down\); call \/complete again/);

    const { res, dataset } = await completeAndWait(secret, id);
    expect(res.status).toBe(202);
    expect(dataset.status, JSON.stringify(dataset.errors)).toBe("ready");
    expect(dataset.errors).toBeNull();
    expect(dataset.stats).toEqual((await checkTextDataset(stream(bytes), { format: "jsonl", purpose: "probe" })).stats);
  });

  it("a multi-step check takes several messages, showing its progress; a replaced upload is sent back", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const bytes = labeledJsonl();
    const id = await uploadOnly(secret, bytes, { modality: "text", format: "jsonl", purpose: "probe" });
    const { msg, objectKey } = await claim(tenantId, id);
    const work = makeDatasetCheckWork({ chunkBytes: 100 * KiB });
    const progress: number[] = [];
    let messages = 1;
    while ((await work.chunk(depsWith(env.ARTIFACTS), msg)) === "more") {
      messages++;
      progress.push((await row(secret, id)).check?.bytes_done as number);
    }
    expect(messages).toBe(Math.ceil(bytes.byteLength / (100 * KiB)));
    expect(messages).toBeGreaterThanOrEqual(4);
    expect(progress).toEqual(progress.map((_, i) => (i + 1) * 100 * KiB));
    expect((await row(secret, id)).status).toBe("ready");

    // A PUT to the staging key between two steps: the check stops and asks for /complete again.
    const id2 = await uploadOnly(secret, bytes, { modality: "text", format: "jsonl", purpose: "probe" });
    const c2 = await claim(tenantId, id2);
    expect(await work.chunk(depsWith(env.ARTIFACTS), c2.msg)).toBe("more");
    const other = bytes.slice();
    other[other.length - 2] = 0x21; // same size, other bytes (R2's etag is their MD5)
    await env.ARTIFACTS.put(stagingKey(c2.objectKey), other);
    expect(await work.chunk(depsWith(env.ARTIFACTS), c2.msg)).toBe("done");
    const sent = await row(secret, id2);
    expect(sent.status).toBe("uploading");
    expect(sent.errors?.[0]?.message).toMatch(/was replaced while it was being checked; call \/complete again/);
    expect(await env.ARTIFACTS.head(checkStateKey(c2.objectKey))).toBeNull();
    expect(await env.ARTIFACTS.head(checkStateKey(objectKey))).toBeNull();
  });

  it("a check whose row stopped moving is enqueued again by /complete, once", async () => {
    const { secret, tenantId } = await newTenant(["train"]);
    const id = await uploadOnly(secret, enc.encode("one\ntwo\n"), { modality: "text", format: "txt" });
    await claim(tenantId, id);
    const db = makeDb(env.DB);
    const load = async () => {
      const d = await db.query.datasets.findFirst({ where: (t, { eq }) => eq(t.id, id) });
      if (!d) throw new Error("gone");
      return d;
    };
    const { sent, queue } = recordingQueue();
    expect(await restartIfStale(db, queue, await load())).toBe(false);
    expect(sent).toEqual([]);
    await env.DB.prepare("update datasets set updated_at = ? where id = ?")
      .bind(Date.now() - 6 * 60 * 1000, id)
      .run();
    expect(await restartIfStale(db, queue, await load())).toBe(true);
    expect(await restartIfStale(db, queue, await load())).toBe(false);
    expect(sent).toEqual([{ kind: "dataset_check", tenantId, id }]);
    // Through the route with the real queue: the stale check is sent again and finishes.
    await env.DB.prepare("update datasets set updated_at = ? where id = ?")
      .bind(Date.now() - 6 * 60 * 1000, id)
      .run();
    expect((await api(`/v1/datasets/${id}/complete`, { method: "POST", key: secret })).status).toBe(202);
    expect((await waitForCheck(secret, id)).status).toBe("ready");
  });
});

const seriesMeta = { modality: "timeseries", format: "csv", purpose: "probe" as const };
const txt = { format: "txt" as const, purpose: "pretrain" as const };
