import { drizzle } from "drizzle-orm/d1";
import { createMiddleware } from "hono/factory";
import * as schema from "../../db/schema";
import { newId } from "../lib/crypto";
import { makePresigner, type Presign } from "../lib/s3";
import { Storage } from "../services/storage";
import type { AppEnv } from "../types";

export type Db = ReturnType<typeof makeDb>;
const makeDb = (d1: D1Database) => drizzle(d1, { schema });

export type Services = { db: Db; storage: Storage; presign: Presign };

/** Puts a request id and the typed services every handler uses on the context. */
export const init = createMiddleware<AppEnv>(async (c, next) => {
  const requestId = c.req.header("x-request-id")?.slice(0, 64) || newId("req");
  c.set("requestId", requestId);
  c.set("services", {
    db: makeDb(c.env.DB),
    storage: new Storage(c.env.ARTIFACTS),
    presign: makePresigner(c.env, new URL(c.req.url).origin),
  });
  await next();
  c.header("x-request-id", requestId);
});
