// Placeholder until this kind moves onto the queue (being built this session).
import type { WorkHandler } from "./work";

export const probeFitWork: WorkHandler = {
  async chunk() {
    throw new Error("probe_fit does not run on the queue yet");
  },
  async giveUp() {},
};
