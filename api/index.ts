import { createApp } from "./app";
import { makeDb } from "./db";
import { consumeWork } from "./services/background/consumer";
import type { WorkMessage } from "./services/background/work";
import { Storage } from "./services/storage";
import { parseSettings } from "./settings";

const app = createApp();

export default {
  fetch: app.fetch,
  // Dataset checks, probe fits and evaluations: chunks of background work (api/services/background).
  async queue(batch, env) {
    const deps = { db: makeDb(env.DB), storage: new Storage(env.ARTIFACTS), settings: parseSettings(env) };
    await consumeWork(deps, env.WORK as Queue<WorkMessage>, batch.messages);
  },
} satisfies ExportedHandler<Env, WorkMessage>;
