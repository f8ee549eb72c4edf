import type { Scope } from "../db/schema";
import type { Db } from "./db";
import type { Presign } from "./lib/s3";
import type { WorkMessage } from "./services/background/work";
import type { Storage } from "./services/storage";
import type { Settings } from "./settings";

export type AuthContext = { keyId: string; tenantId: string; scopes: Scope[] };

/** What `init` puts on every request's context. */
export type Services = {
  db: Db;
  storage: Storage;
  presign: Presign;
  settings: Settings;
  /** The work queue: handlers enqueue long work here (api/services/background) and return. */
  work: Queue<WorkMessage>;
};

export type AppEnv = {
  Bindings: Env;
  Variables: { requestId: string; services: Services; auth: AuthContext };
};
