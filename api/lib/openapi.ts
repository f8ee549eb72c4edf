import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { AppEnv } from "../types";
import { badRequest, zodFieldErrors } from "./errors";

/**
 * zod's `.int()` accepts only safe integers (|n| <= 2^53 - 1) but does not say so in the generated
 * schema; every integer without an explicit bound gets the one the server enforces, so generated
 * clients and fuzzers send what the server takes.
 */
export function withSafeIntegerBounds<T>(doc: T): T {
  const seen = new Set<unknown>();
  const walk = (node: unknown) => {
    if (node === null || typeof node !== "object" || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const x of node) walk(x);
      return;
    }
    const o = node as Record<string, unknown>;
    const type = o.type;
    if (type === "integer" || (Array.isArray(type) && type.includes("integer"))) {
      if (o.maximum === undefined && o.exclusiveMaximum === undefined) o.maximum = Number.MAX_SAFE_INTEGER;
      if (o.minimum === undefined && o.exclusiveMinimum === undefined) o.minimum = Number.MIN_SAFE_INTEGER;
    }
    for (const v of Object.values(o)) walk(v);
  };
  walk(doc);
  return doc;
}

/** A router whose validation failures become 400 problems that name each field. */
export function newRouter() {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const errors = zodFieldErrors(result.error.issues, result.target === "json" ? undefined : result.target);
        const first = errors[0];
        throw badRequest(first ? `${first.path}: ${first.message}` : "Invalid request.", errors);
      }
    },
  });
  // doc31 (GET /openapi.json) calls this property at request time.
  const generate = app.getOpenAPI31Document;
  app.getOpenAPI31Document = (...args) => withSafeIntegerBounds(generate(...args));
  return app;
}

export type Router = ReturnType<typeof newRouter>;

export const jsonBody = <T extends z.ZodType>(schema: T, description?: string) => ({
  required: true,
  description,
  content: { "application/json": { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const bearer = [{ bearer: [] as string[] }];
