import { z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type FieldError = { path: string; message: string };

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** The one error type of the API; `onError` renders it as application/problem+json (RFC 9457). */
export class ApiError extends HTTPException {
  readonly code: string;
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: string,
    detail: string,
    opts: { errors?: FieldError[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(status, { message: detail, cause: opts.cause });
    this.code = code;
    this.errors = opts.errors;
    this.headers = opts.headers;
  }
}

export const badRequest = (detail: string, errors?: FieldError[]) =>
  new ApiError(400, "invalid_request", detail, { errors });
export const notFound = (detail: string) => new ApiError(404, "not_found", detail);
export const conflict = (detail: string, errors?: FieldError[]) => new ApiError(409, "conflict", detail, { errors });
export const unprocessable = (detail: string, errors?: FieldError[]) =>
  new ApiError(422, "unprocessable", detail, { errors });

/** OpenAI's `error.type` for a status: what its SDKs and client libraries branch on. */
function openAiType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/**
 * The RFC 9457 problem, plus OpenAI's `error` member: the official SDKs read only
 * `error.message` (and `type`, `code`, `param`) and otherwise show a bare "Error code: 404".
 */
export function problemBody(status: number, code: string, detail: string, requestId: string, errors?: FieldError[]) {
  return {
    type: `https://selfsup.dev/problems/${code}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    requestId,
    ...(errors && errors.length > 0 ? { errors } : {}),
    error: { message: detail, type: openAiType(status), code, param: errors?.[0]?.path ?? null },
  };
}

export function problemResponse(
  status: number,
  code: string,
  detail: string,
  requestId: string,
  errors?: FieldError[],
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(problemBody(status, code, detail, requestId, errors)), {
    status,
    headers: { "content-type": "application/problem+json", "x-request-id": requestId, ...headers },
  });
}

/** Turns a zod issue path into the dotted form people type: `input[3]`, `manifest.dims`. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || "(body)";
}

export function zodFieldErrors(issues: ReadonlyArray<z.core.$ZodIssue>, prefix?: string): FieldError[] {
  return issues.map((i) => ({
    path: fieldPath(prefix ? [prefix, ...i.path] : i.path),
    message: i.message,
  }));
}

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: "https://selfsup.dev/problems/invalid_request" }),
    title: z.string().openapi({ example: "Bad Request" }),
    status: z.number().int().openapi({ example: 400 }),
    detail: z.string().openapi({ example: "input[2]: must not be empty; send at least one character" }),
    requestId: z.string().openapi({ example: "req_01JD3Z6V6M4W1X" }),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .openapi({ example: [{ path: "input[2]", message: "must not be empty" }] }),
    error: z
      .object({
        message: z.string().openapi({ description: "The same text as `detail`." }),
        type: z.string().openapi({
          description:
            "OpenAI's error type: `invalid_request_error`, `authentication_error`, `permission_error`, `rate_limit_error` or `server_error`.",
        }),
        code: z.string().openapi({ description: "The problem's code (the last segment of `type`)." }),
        param: z.string().nullable().openapi({ description: "The first field path of `errors[]`, if any." }),
      })
      .openapi({
        description: "OpenAI's error member, so the official SDKs show the message.",
        example: {
          message: "input[2]: must not be empty; send at least one character",
          type: "invalid_request_error",
          code: "invalid_request",
          param: "input[2]",
        },
      }),
  })
  .openapi("Problem");

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

/** Spread into every route's `responses` so the spec documents the shared failures. */
export const errorResponses = {
  400: problem("Malformed JSON or a field failed validation; `errors[]` names each field."),
  401: problem("Missing, unknown or revoked API key."),
  403: problem("The key lacks the scope this route needs."),
  404: problem("No such resource in this tenant."),
  409: problem("The request conflicts with the resource's current state."),
  413: problem("The request is larger than the documented limit."),
  415: problem("Unsupported content type."),
  422: problem("Well-formed but semantically invalid."),
  429: problem("Too many requests; retry after the `retry-after` seconds."),
  500: problem("Unexpected error; quote `requestId` when reporting it."),
  503: problem("Temporarily unable to finish the request; retry it."),
} as const;
