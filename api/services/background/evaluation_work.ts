// Placeholder until this kind moves onto the queue (being built this session).
import type { WorkHandler } from "./work";

export const evaluationWork: WorkHandler = {
  async chunk() {
    throw new Error("evaluation does not run on the queue yet");
  },
  async giveUp() {},
};
