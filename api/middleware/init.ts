import { createMiddleware } from "hono/factory";
import { requestId } from "hono/request-id";
import { makeDb } from "../db";
import { newId } from "../lib/crypto";
import { requestStarted } from "../lib/priority";
import { makePresigner } from "../lib/s3";
import type { WorkMessage } from "../services/background/work";
import { Storage } from "../services/storage";
import { parseSettings } from "../settings";
import type { AppEnv } from "../types";

/** Longest incoming `x-request-id` kept; our own `req_` ids are 24 characters. */
export const MAX_REQUEST_ID_LENGTH = 64;

/** Counts the request as in flight while it runs, so background work gives way (lib/priority.ts). */
export const countInFlight = createMiddleware(async (_c, next) => {
  const done = requestStarted();
  try {
    await next();
  } finally {
    done();
  }
});

/**
 * Names every request: an incoming `x-request-id` is kept only when it is at most 64 of
 * `[A-Za-z0-9_=-]` (Hono's check), so a caller cannot put newlines, markup or kilobytes into our
 * logs and problem bodies; anything else gets a fresh `req_` id.
 */
export const requestIds = requestId({ limitLength: MAX_REQUEST_ID_LENGTH, generator: () => newId("req") });

/** Puts the typed services every handler uses on the context (after `requestIds`). */
export const init = createMiddleware<AppEnv>(async (c, next) => {
  c.set("services", {
    db: makeDb(c.env.DB),
    storage: new Storage(c.env.ARTIFACTS),
    presign: makePresigner(c.env, new URL(c.req.url).origin),
    settings: parseSettings(c.env),
    work: c.env.WORK as Queue<WorkMessage>,
  });
  await next();
});
