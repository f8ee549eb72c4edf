// Evaluation chunks called directly (issue 15): a consumer that dies mid-chunk resumes from the
// stored cursor without embedding stored chunks again and ends with the results of an uninterrupted
// run; a duplicate delivery of one chunk advances the cursor once. Fault injection: a Storage
// whose puts of embedding vectors start failing after a number of them.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { makeDb } from "../api/db";
import { makeEvaluationWork } from "../api/services/background/evaluation_work";
import { dropPlan } from "../api/services/background/probe_work_chunks";
import type { WorkDeps, WorkMessage } from "../api/services/background/work";
import { type EvaluationState, startEvaluation } from "../api/services/evaluations";
import { Storage } from "../api/services/storage";
import { parseSettings } from "../api/settings";
import { readySet } from "./dataset_upload";
import { importFixture } from "./fixture";
import { api, newTenant } from "./helpers";
import { fortunes } from "./probe_fixtures";

const set = fortunes();
const examples = (set.texts as string[]).map((input, i) => ({
  input,
  label: set.labelNames[set.y[i] as number] as string,
}));
const body = { models: ["tiny"], data: examples, test: { split: 0.25, seed: 1 }, kinds: ["linear", "knn"] as const };

const isVector = (key: string) => key.startsWith("cache/embeddings/") && !key.includes("/sets/");
const isChunk = (key: string) => key.startsWith("cache/embeddings/") && key.includes("/sets/");

/** Records every put; from the `failAfter`-th vector put on, throws instead (an R2 outage, a dying isolate). */
class RecordingStorage extends Storage {
  readonly vectors: string[] = [];
  readonly chunks: string[] = [];
  // Counted when a put starts: puts run 16 at a time.
  private started = 0;
  constructor(
    bucket: R2Bucket,
    private readonly failAfter = Number.POSITIVE_INFINITY,
  ) {
    super(bucket);
  }
  override async put(key: string, data: ArrayBuffer | Uint8Array | string, contentType?: string) {
    if (isVector(key) && this.started++ >= this.failAfter) throw new Error("injected: R2 put failed");
    const out = await super.put(key, data, contentType);
    if (isVector(key)) this.vectors.push(key);
    if (isChunk(key)) this.chunks.push(key);
    return out;
  }
}

/** No queue in these tests: the chunks are driven by hand. */
const noQueue = { send: async () => {}, sendBatch: async () => {} } as unknown as Queue<WorkMessage>;

async function start(chunkItems: number) {
  const { secret, tenantId } = await newTenant(["train", "probe"]);
  await importFixture(secret, "tiny");
  const db = makeDb(env.DB);
  const storage = new Storage(env.ARTIFACTS);
  const ctx = { db, storage, bucket: storage.bucket, tenantId };
  const row = await startEvaluation(ctx, "auto", { ...body, kinds: [...body.kinds] }, noQueue, chunkItems);
  const msg: WorkMessage = { kind: "evaluation", tenantId, id: row.id };
  const deps = (s: Storage): WorkDeps => ({ db, storage: s, settings: parseSettings(env) });
  const read = () => db.query.evaluations.findFirst({ where: (t, { eq }) => eq(t.id, row.id) });
  return { msg, deps, read };
}

/** Calls chunk until "done"; returns how many calls it took. */
async function drive(work: ReturnType<typeof makeEvaluationWork>, deps: WorkDeps, msg: WorkMessage) {
  for (let calls = 1; ; calls++) if ((await work.chunk(deps, msg)) === "done") return calls;
}

const withoutTimings = (table: { timings?: unknown }[]) => table.map(({ timings: _, ...rest }) => rest);

describe("evaluation chunks", () => {
  it("resume after a crash mid-chunk without embedding stored chunks again, with the uninterrupted results", async () => {
    const work = makeEvaluationWork({ chunkItems: 32 });
    const { msg, deps, read } = await start(work.chunkItems);
    const failing = new RecordingStorage(env.ARTIFACTS, 64 + 5);
    expect(await work.chunk(deps(failing), msg)).toBe("more");
    expect(await work.chunk(deps(failing), msg)).toBe("more");
    await expect(work.chunk(deps(failing), msg)).rejects.toThrow(/injected/);
    let state = (await read())?.state as unknown as EvaluationState;
    // Two chunks stored; the third died after 5 of its vectors reached R2, before its cursor moved.
    expect(state).toMatchObject({ step: 2, pass: 0, offset: 64, items_done: 64, phase: "embedding" });
    expect(failing.chunks).toHaveLength(2);

    // The isolate that crashed took its held plan with it: the resumed chunks plan the split again.
    dropPlan(`evaluation:${msg.id}`);
    const real = new RecordingStorage(env.ARTIFACTS);
    // 360 inputs in chunks of 32: 10 more embedding chunks, one fit, the baseline.
    expect(await drive(work, deps(real), msg)).toBe(10 + 1 + 1);
    const done = await read();
    expect(done?.status).toBe("succeeded");
    state = done?.state as unknown as EvaluationState;
    expect(state).toMatchObject({ phase: "done", items_done: 360, items_total: 360 });
    // Nothing stored before the crash was written again: neither a vector nor a chunk.
    expect(real.vectors.filter((k) => failing.vectors.includes(k))).toEqual([]);
    expect(real.chunks.filter((k) => failing.chunks.includes(k))).toEqual([]);
    expect(new Set([...failing.vectors, ...real.vectors]).size).toBe(360);
    expect(real.vectors.length).toBe(360 - 64 - 5);
    // Each distinct input went through the encoder once over both runs.
    expect(state.models[0]?.embedded).toBe(360 - 5);
    expect(state.models[0]?.cached).toBe(5);

    // The same evaluation uninterrupted, in one chunk per 128 inputs, on a fresh version (fresh cache).
    const once = makeEvaluationWork();
    const other = await start(once.chunkItems);
    expect(await drive(once, other.deps(new Storage(env.ARTIFACTS)), other.msg)).toBe(3 + 1 + 1);
    const reference = (await other.read())?.results as Record<string, unknown>;
    const resumed = done?.results as Record<string, unknown>;
    expect(resumed.rows).toEqual(reference.rows);
    expect(withoutTimings(resumed.table as [])).toEqual(withoutTimings(reference.table as []));
    expect({ ...resumed, rows: 0, table: 0 }).toEqual({ ...reference, rows: 0, table: 0 });
  });

  it("advance once when one chunk is delivered twice at the same time, and finish once", async () => {
    const work = makeEvaluationWork({ chunkItems: 100 });
    const { msg, deps, read } = await start(work.chunkItems);
    const d = deps(new Storage(env.ARTIFACTS));
    const both = await Promise.all([work.chunk(d, msg), work.chunk(d, msg)]);
    expect(both.sort()).toEqual(["done", "more"]);
    expect((await read())?.state).toMatchObject({ step: 1, offset: 100, items_done: 100 });
    // 260 inputs left in chunks of 100, one fit, the baseline.
    expect(await drive(work, d, msg)).toBe(3 + 1 + 1);
    const finished = await read();
    expect(finished?.status).toBe("succeeded");
    // A late duplicate finds the evaluation finished and changes nothing.
    expect(await work.chunk(d, msg)).toBe("done");
    expect(await read()).toEqual(finished);
  });

  it("fail with the problem when the data changed under them, and when the queue gives up", async () => {
    const work = makeEvaluationWork();
    const { secret, tenantId } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    const jsonl = `${examples.map((e) => JSON.stringify({ text: e.input, label: e.label })).join("\n")}\n`;
    const ds = await readySet(secret, new TextEncoder().encode(jsonl), {
      modality: "text",
      format: "jsonl",
      purpose: "probe",
    });
    const db = makeDb(env.DB);
    const storage = new Storage(env.ARTIFACTS);
    const ctx = { db, storage, bucket: storage.bucket, tenantId };
    const deps: WorkDeps = { db, storage, settings: parseSettings(env) };
    const started = await startEvaluation(ctx, "auto", { models: ["tiny"], data: { dataset: ds.id } }, noQueue, 128);
    const msg: WorkMessage = { kind: "evaluation", tenantId, id: started.id };
    expect(await work.chunk(deps, msg)).toBe("more");
    expect((await api(`/v1/datasets/${ds.id}`, { method: "DELETE", key: secret })).status).toBe(200);
    // A deleted dataset is an answer, not a reason to retry.
    expect(await work.chunk(deps, msg)).toBe("done");
    const failed = await (await api(`/v1/evaluations/${started.id}`, { key: secret })).json<{
      status: string;
      error: { title: string; detail: string; status: number };
      completedAt: string | null;
    }>();
    expect(failed).toMatchObject({ status: "failed", error: { status: 404 } });
    expect(failed.error.detail).toContain(ds.id);
    expect(failed.completedAt).not.toBeNull();

    // Retries spent (an R2 outage, say): giveUp records the last error.
    const other = await startEvaluation(ctx, "auto", { ...body, kinds: [...body.kinds] }, noQueue, 128);
    const otherMsg: WorkMessage = { kind: "evaluation", tenantId, id: other.id };
    await work.giveUp(deps, otherMsg, new Error("R2 unavailable"));
    const gaveUp = await (await api(`/v1/evaluations/${other.id}`, { key: secret })).json<{
      status: string;
      error: unknown;
    }>();
    expect(gaveUp).toMatchObject({ status: "failed", error: { title: "The work failed", detail: "R2 unavailable" } });
    // A message that arrives after that does nothing.
    expect(await work.chunk(deps, otherMsg)).toBe("done");
  });

  it("fail the row when the queue refuses the first message", async () => {
    const { secret, tenantId } = await newTenant(["train", "probe"]);
    await importFixture(secret, "tiny");
    const storage = new Storage(env.ARTIFACTS);
    const ctx = { db: makeDb(env.DB), storage, bucket: storage.bucket, tenantId };
    const refusing = {
      send: async () => {
        throw new Error("queue full");
      },
    } as unknown as Queue<WorkMessage>;
    await expect(startEvaluation(ctx, "auto", { ...body, kinds: [...body.kinds] }, refusing, 128)).rejects.toThrow(
      "queue full",
    );
    const list = await (await api("/v1/evaluations", { key: secret })).json<{
      data: { status: string; error: { detail: string } | null }[];
    }>();
    expect(list.data).toMatchObject([{ status: "failed", error: { detail: "queue full" } }]);
  });
});
