// Queued work whose message was lost (issue 15): a `running` evaluation or `fitting` probe left
// without a message (created here with a queue that drops it, as a restarted `wrangler dev` would)
// is sent again by a read once its row has sat still past the stale window, and the real queue then
// finishes it; concurrent readers send one message; live rows are left alone. Messages are counted
// through a queue wrapper passed to the service.
import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { makeDb } from "../api/db";
import {
  MAX_RECOVERED_PER_LIST,
  recoverIfStale,
  recoverStaleRows,
  STALE_EMBEDDING_MS,
  STALE_FITTING_MS,
} from "../api/services/background/stale";
import type { WorkMessage } from "../api/services/background/work";
import { startEvaluation } from "../api/services/evaluations";
import { createProbe } from "../api/services/probe_runs";
import { Storage } from "../api/services/storage";
import { evaluations, probes } from "../db/schema";
import { readySet } from "./dataset_upload";
import { importFixture } from "./fixture";
import { api, newTenant } from "./helpers";
import { settled } from "./poll";
import { fortunes } from "./probe_fixtures";

const set = fortunes();
const examples = (set.texts as string[]).map((input, i) => ({
  input,
  label: set.labelNames[set.y[i] as number] as string,
}));
const body = () => ({ models: ["tiny"], data: examples, test: { split: 0.25, seed: 1 } });

/** A queue that keeps what it is sent and delivers nothing: the message a restart lost. */
function recordingQueue() {
  const sent: WorkMessage[] = [];
  const queue = {
    send: async (m: WorkMessage) => {
      sent.push(m);
    },
  } as unknown as Queue<WorkMessage>;
  return { sent, queue };
}

const db = makeDb(env.DB);
const storage = new Storage(env.ARTIFACTS);

async function tenantWithTiny() {
  const { secret, tenantId } = await newTenant(["train", "probe"]);
  await importFixture(secret, "tiny");
  return { secret, tenantId, ctx: { db, storage, bucket: storage.bucket, tenantId } };
}

/** An evaluation stored `running` whose only message went to `queue` (never delivered). */
async function lostEvaluation(ctx: Awaited<ReturnType<typeof tenantWithTiny>>["ctx"]) {
  return startEvaluation(ctx, "auto", body(), recordingQueue().queue, 128);
}

const readEvaluation = async (id: string) =>
  (await db.query.evaluations.findFirst({ where: eq(evaluations.id, id) })) as typeof evaluations.$inferSelect;

/** Makes the row look as if nothing touched it for `ms`. */
async function idle(id: string, ms: number) {
  const row = await readEvaluation(id);
  await db
    .update(evaluations)
    .set({ updatedAt: (row.updatedAt as number) - ms })
    .where(eq(evaluations.id, id));
  return readEvaluation(id);
}

type Evaluation = { id: string; status: string; progress: { phase: string; items_done: number } | null };
type Probe = { id: string; status: string; metrics: { accuracy: number } | null };

describe("stale queued work", () => {
  it("a GET sends a lost evaluation again and the real queue brings it to succeeded", async () => {
    const { secret, ctx } = await tenantWithTiny();
    const started = await lostEvaluation(ctx);
    const get = () => api(`/v1/evaluations/${started.id}`, { key: secret }).then((r) => r.json<Evaluation>());

    // Fresh: a read changes nothing (the claim would move updated_at) and nothing advances it.
    expect((await get()).status).toBe("running");
    const fresh = await readEvaluation(started.id);
    expect(fresh.updatedAt).toBe(started.updatedAt);
    expect(fresh.state).toMatchObject({ step: 0, items_done: 0 });

    const stale = await idle(started.id, STALE_EMBEDDING_MS + 1000);
    const before = Date.now();
    expect((await get()).status).toBe("running");
    // Claimed by this read: updated_at moved to the read's clock.
    expect((await readEvaluation(started.id)).updatedAt).toBeGreaterThanOrEqual(before);
    expect(stale.updatedAt).toBeLessThan(before - STALE_EMBEDDING_MS);

    const done = await settled(get);
    expect(done.status).toBe("succeeded");
    expect(done.progress).toMatchObject({ phase: "done", items_done: 360 });
  });

  it("a probe list sends a lost probe over a dataset again and the real queue fits it", async () => {
    const { secret, ctx } = await tenantWithTiny();
    const jsonl = `${examples.map((e) => JSON.stringify({ text: e.input, label: e.label })).join("\n")}\n`;
    const ds = await readySet(secret, new TextEncoder().encode(jsonl), {
      modality: "text",
      format: "jsonl",
      purpose: "probe",
    });
    const lost = recordingQueue();
    const { probe } = await createProbe(
      ctx,
      "auto",
      { model: "tiny", kind: "linear", train: { dataset: ds.id } },
      lost.queue,
      128,
    );
    expect(lost.sent).toHaveLength(1);
    await db
      .update(probes)
      .set({ updatedAt: (probe.updatedAt as number) - STALE_EMBEDDING_MS - 1000 })
      .where(eq(probes.id, probe.id));

    const list = await (await api("/v1/probes", { key: secret })).json<{ data: Probe[] }>();
    expect(list.data.map((p) => [p.id, p.status])).toEqual([[probe.id, "fitting"]]);
    const ready = await settled(() => api(`/v1/probes/${probe.id}`, { key: secret }).then((r) => r.json<Probe>()));
    expect(ready.status).toBe("ready");
    expect(ready.metrics?.accuracy).toBeGreaterThan(0.5);
  });

  it("two concurrent reads of a lost row send one message", async () => {
    const { ctx } = await tenantWithTiny();
    const started = await lostEvaluation(ctx);
    const row = await idle(started.id, STALE_EMBEDDING_MS + 1000);
    const { sent, queue } = recordingQueue();
    const now = Date.now();
    const both = await Promise.all([
      recoverIfStale(db, queue, "evaluation", row, now),
      recoverIfStale(db, queue, "evaluation", row, now),
    ]);
    expect(both.sort()).toEqual([false, true]);
    expect(sent).toEqual([{ kind: "evaluation", tenantId: started.tenantId, id: started.id }]);
    // A reader that saw the row before the claim finds it moved and sends nothing.
    expect(await recoverIfStale(db, queue, "evaluation", row, now + 1)).toBe(false);
    // The claim restarts the window: only after another one does a read send again.
    const claimed = await readEvaluation(started.id);
    expect(claimed.updatedAt).toBe(now);
    expect(await recoverIfStale(db, queue, "evaluation", claimed, now + STALE_EMBEDDING_MS)).toBe(false);
    expect(await recoverIfStale(db, queue, "evaluation", claimed, now + STALE_EMBEDDING_MS + 1)).toBe(true);
    expect(sent).toHaveLength(2);
  });

  it("leaves live and finished rows alone, and gives a fit its longer window", async () => {
    const { ctx } = await tenantWithTiny();
    const started = await lostEvaluation(ctx);
    const { sent, queue } = recordingQueue();
    const at = started.updatedAt as number;
    expect(await recoverIfStale(db, queue, "evaluation", started, Date.now())).toBe(false);
    expect(await recoverIfStale(db, queue, "evaluation", started, at + STALE_EMBEDDING_MS)).toBe(false);
    expect(sent).toEqual([]);

    // Fitting: one chunk may run for minutes before it stores anything.
    await db
      .update(evaluations)
      .set({ state: { ...(started.state as Record<string, unknown>), phase: "fitting" } })
      .where(eq(evaluations.id, started.id));
    const fitting = await readEvaluation(started.id);
    expect(await recoverIfStale(db, queue, "evaluation", fitting, at + STALE_EMBEDDING_MS + 1)).toBe(false);
    expect(await recoverIfStale(db, queue, "evaluation", fitting, at + STALE_FITTING_MS)).toBe(false);
    expect(sent).toEqual([]);
    expect(await recoverIfStale(db, queue, "evaluation", fitting, at + STALE_FITTING_MS + 1)).toBe(true);
    expect(sent).toHaveLength(1);

    // Failed (or succeeded) rows are final, however old.
    await db.update(evaluations).set({ status: "failed" }).where(eq(evaluations.id, started.id));
    const failed = await readEvaluation(started.id);
    expect(await recoverIfStale(db, queue, "evaluation", failed, at + 100 * STALE_FITTING_MS)).toBe(false);
    expect(sent).toHaveLength(1);
  });

  it("undoes the claim when the queue refuses, so the next read tries again", async () => {
    const { ctx } = await tenantWithTiny();
    const started = await lostEvaluation(ctx);
    const row = await idle(started.id, STALE_EMBEDDING_MS + 1000);
    const refusing = {
      send: async () => {
        throw new Error("queue unavailable");
      },
    } as unknown as Queue<WorkMessage>;
    expect(await recoverIfStale(db, refusing, "evaluation", row, Date.now())).toBe(false);
    expect((await readEvaluation(started.id)).updatedAt).toBe(row.updatedAt);
    const { sent, queue } = recordingQueue();
    expect(await recoverIfStale(db, queue, "evaluation", row, Date.now())).toBe(true);
    expect(sent).toHaveLength(1);
  });

  it("sends at most a few per list call, newest first", async () => {
    const { ctx } = await tenantWithTiny();
    const ids: string[] = [];
    for (let i = 0; i < MAX_RECOVERED_PER_LIST + 2; i++) {
      const e = await lostEvaluation(ctx);
      await idle(e.id, STALE_EMBEDDING_MS + 1000 + i);
      ids.push(e.id);
    }
    const list = () =>
      db.select().from(evaluations).where(eq(evaluations.tenantId, ctx.tenantId)).orderBy(evaluations.createdAt);
    const { sent, queue } = recordingQueue();
    const newestFirst = (await list()).reverse();
    const now = Date.now();
    expect(await recoverStaleRows(db, queue, "evaluation", newestFirst, now)).toBe(MAX_RECOVERED_PER_LIST);
    expect(sent.map((m) => m.id)).toEqual(newestFirst.slice(0, MAX_RECOVERED_PER_LIST).map((r) => r.id));
    // The next read finds the rest (the claimed ones are fresh now).
    expect(await recoverStaleRows(db, queue, "evaluation", (await list()).reverse(), now)).toBe(2);
    expect(await recoverStaleRows(db, queue, "evaluation", (await list()).reverse(), now)).toBe(0);
    expect(new Set(sent.map((m) => m.id))).toEqual(new Set(ids));
  });
});
