// Interactive requests before background work (api/lib/priority.ts), the kernel's layer-at-a-time
// embed that lets a long background sequence give way between layers, and a dataset check step
// whose storage reads wait for requests in flight.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { inBackground, isBackground, MAX_DEFER_MS, requestStarted, requestsInFlight, turn } from "../api/lib/priority";
import { checkStep, loadCursor, READ_BYTES } from "../api/services/dataset_check_state";
import { KernelModel } from "../api/services/encoder/kernel";
import { fixtureBytes } from "./fixture";

const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => {
    done = true;
  });
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 5));
  return done;
};

describe("background turns give way to requests in flight", () => {
  it("a background turn waits while a request is in flight and goes on when it ends", async () => {
    const done = requestStarted();
    expect(requestsInFlight()).toBe(1);
    const waiting = inBackground(async () => {
      expect(isBackground()).toBe(true);
      await turn();
    });
    expect(await settled(waiting)).toBe(false);
    done();
    done(); // ending twice counts once
    expect(requestsInFlight()).toBe(0);
    await waiting;
  });

  it("a request's own turn never waits, and a background turn waits at most MAX_DEFER_MS", async () => {
    const done = requestStarted();
    try {
      expect(isBackground()).toBe(false);
      expect(await settled(turn())).toBe(true);
      const started = Date.now();
      await inBackground(turn);
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(MAX_DEFER_MS - 5);
      expect(waited).toBeLessThan(MAX_DEFER_MS + 500);
    } finally {
      done();
    }
  });
});

describe("KernelModel.embedInLayers", () => {
  it("gives exactly embed's vector, pausing between layers", async () => {
    const kernel = await KernelModel.load(fixtureBytes("model.int8.kernel"));
    try {
      const ids = [2, 150, 42, 917, 33, 1204, 3];
      let pauses = 0;
      const layered = await kernel.embedInLayers(ids, async () => {
        pauses++;
      });
      expect(Array.from(layered)).toEqual(Array.from(kernel.embed(ids)));
      expect(pauses).toBe(1); // the fixture has 2 layers
      await expect(kernel.embedInLayers([], async () => {})).rejects.toThrow(/refused a sequence of 0 ids/);
    } finally {
      kernel.release();
    }
  });
});

describe("a dataset check step's storage calls give way too", () => {
  it("reads nothing while a request is in flight, then reads the step in 1 MiB turns", async () => {
    // A chain of in-process storage calls (wrangler dev's R2) never idles the event loop; without a
    // turn before each read, a new request was not even accepted until the whole step was read.
    const key = `staging/datasets/prio/${crypto.randomUUID()}/data.jsonl`;
    const line = `${JSON.stringify({ text: "Call me Ishmael. Some years ago, never mind how long precisely." })}\n`;
    const bytes = new TextEncoder().encode(line.repeat(Math.ceil((3.5 * 2 ** 20) / line.length)));
    const put = await env.ARTIFACTS.put(key, bytes);
    const v = { key, etag: put?.etag as string, size: bytes.length };
    let reads = 0;
    const bucket = new Proxy(env.ARTIFACTS, {
      get(target, prop) {
        if (prop !== "get") return Reflect.get(target, prop).bind(target);
        return (k: string, o?: R2GetOptions) => {
          if (k === key) reads++;
          return target.get(k, o);
        };
      },
    });
    const d = {
      modality: "text",
      format: "jsonl",
      purpose: "pretrain",
      objectKey: key.slice("staging/".length),
    } as const;
    const cursor = await loadCursor(bucket, d, v);
    const done = requestStarted();
    const step = inBackground(() => checkStep(bucket, v, cursor, 4 * 2 ** 20));
    expect(await settled(step)).toBe(false);
    expect(reads).toBe(0);
    done();
    const result = await step;
    expect(reads).toBe(Math.ceil(bytes.length / READ_BYTES));
    expect(result?.errors).toEqual([]);
    expect(result?.sha256).toBe(await sha256Hex(bytes));
  });
});
