// Placeholder until this kind moves onto the queue (being built this session).
import type { WorkHandler } from "./work";

export const datasetCheckWork: WorkHandler = {
  async chunk() {
    throw new Error("dataset_check does not run on the queue yet");
  },
  async giveUp() {},
};
