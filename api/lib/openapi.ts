import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { AppEnv } from "../types";
import { badRequest, zodFieldErrors } from "./errors";

/** A router whose validation failures become 400 problems that name each field. */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const errors = zodFieldErrors(result.error.issues, result.target === "json" ? undefined : result.target);
        const first = errors[0];
        throw badRequest(first ? `${first.path}: ${first.message}` : "Invalid request.", errors);
      }
    },
  });
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
