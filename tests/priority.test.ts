// Interactive requests before background work (api/lib/priority.ts), and the kernel's layer-at-a-
// time embed that lets a long background sequence give way between layers.
import { describe, expect, it } from "vitest";
import { inBackground, isBackground, MAX_DEFER_MS, requestStarted, requestsInFlight, turn } from "../api/lib/priority";
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
