import { createMiddleware } from "hono/factory";
import { makeDb } from "../db";
import { newId } from "../lib/crypto";
import { makePresigner } from "../lib/s3";
import { Storage } from "../services/storage";
import { parseSettings } from "../settings";
import type { AppEnv } from "../types";

/** Puts a request id and the typed services every handler uses on the context. */
export const init = createMiddleware<AppEnv>(async (c, next) => {
  const requestId = c.req.header("x-request-id")?.slice(0, 64) || newId("req");
  c.set("requestId", requestId);
  c.set("services", {
    db: makeDb(c.env.DB),
    storage: new Storage(c.env.ARTIFACTS),
    presign: makePresigner(c.env, new URL(c.req.url).origin),
    settings: parseSettings(c.env),
  });
  await next();
  c.header("x-request-id", requestId);
});
