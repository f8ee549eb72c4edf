import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../api/app";
import { api, count, expectProblem, newTenant } from "./helpers";

describe("health, spec and errors", () => {
  it("GET /health needs no key and checks the database", async () => {
    const res = await api("/health");
    expect(res.status).toBe(200);
    const body = await res.json<{ status: string; database: string }>();
    expect(body).toMatchObject({ status: "ok", database: "ok" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("serves an OpenAPI 3.1 document listing every route with examples", async () => {
    const res = await api("/openapi.json");
    expect(res.status).toBe(200);
    const spec = await res.json<{
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    }>();
    expect(spec.openapi).toBe("3.1.0");
    for (const p of [
      "/health",
      "/v1/keys",
      "/v1/keys/{id}",
      "/v1/models",
      "/v1/models/{name}",
      "/v1/models/{name}/versions",
      "/v1/models/{name}/versions/{version}",
      "/v1/models/{name}/aliases/{alias}",
      "/v1/models/{name}/aliases/{alias}/history",
    ]) {
      expect(spec.paths, p).toHaveProperty([p]);
    }
    expect(JSON.stringify(spec.components.schemas.Problem)).toContain("example");
    expect(JSON.stringify(spec.paths["/v1/keys"])).toContain("401");
  });

  it("renders a reference page at /docs", async () => {
    const res = await api("/docs");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("/openapi.json");
  });

  it("unknown paths are 404 and wrong methods 405 with Allow, both as problem+json", async () => {
    const p404 = await expectProblem(await api("/v1/nope"), 404);
    expect(p404.detail).toContain("/v1/nope");
    const res = await api("/v1/keys", { method: "PATCH" });
    const p405 = await expectProblem(res, 405);
    expect(res.headers.get("allow")).toContain("GET");
    expect(p405.detail).toContain("POST");
  });

  it("malformed JSON is a 400 problem and writes nothing", async () => {
    const { secret, tenantId } = await newTenant();
    const before = await count("api_keys", "tenant_id = ?", tenantId);
    const res = await api("/v1/keys", {
      method: "POST",
      key: secret,
      headers: { "content-type": "application/json" },
      body: "{nope",
    });
    const p = await expectProblem(res, 400);
    expect(p.detail.toLowerCase()).toContain("json");
    expect(await count("api_keys", "tenant_id = ?", tenantId)).toBe(before);
  });

  it("validation failures name the field", async () => {
    const { secret } = await newTenant();
    const res = await api("/v1/keys", { method: "POST", key: secret, json: { name: "x", scopes: ["root"] } });
    const p = await expectProblem(res, 400);
    expect(p.errors?.[0]?.path).toBe("scopes[0]");
  });

  it("every error also carries OpenAI's error member (message, type, code, param) for the official SDKs", async () => {
    type OpenAiProblem = {
      detail: string;
      error?: { message: string; type: string; code: string; param: string | null };
    };
    const { secret } = await newTenant();
    const cases: [Response, number, Omit<NonNullable<OpenAiProblem["error"]>, "message">][] = [
      [await api("/v1/nope", { key: secret }), 404, { type: "invalid_request_error", code: "not_found", param: null }],
      [await api("/v1/keys"), 401, { type: "authentication_error", code: "unauthorized", param: null }],
      [
        await api("/v1/keys", { method: "POST", key: secret, json: { name: "x", scopes: ["root"] } }),
        400,
        { type: "invalid_request_error", code: "invalid_request", param: "scopes[0]" },
      ],
      [
        await api("/v1/keys", {
          method: "POST",
          key: secret,
          headers: { "content-type": "application/json" },
          body: "{",
        }),
        400,
        { type: "invalid_request_error", code: "malformed_request", param: null },
      ],
      [
        await api("/v1/keys", { method: "PATCH", key: secret }),
        405,
        { type: "invalid_request_error", code: "method_not_allowed", param: null },
      ],
      [
        await api("/v1/embeddings", { method: "POST", key: secret, json: { model: "missing-model", input: "x" } }),
        404,
        { type: "invalid_request_error", code: "not_found", param: null },
      ],
    ];
    for (const [res, status, error] of cases) {
      const text = await res.clone().text();
      await expectProblem(res, status);
      const body = JSON.parse(text) as OpenAiProblem;
      expect(body.error, text).toEqual({ message: body.detail, ...error });
    }
  });
});

describe("request ids", () => {
  const fresh = /^req_[0-9a-z]+[0-9A-Za-z]{12}$/;

  it("keeps a safe incoming x-request-id and names it in the header and in problem bodies", async () => {
    const res = await api("/v1/nope", { headers: { "x-request-id": "trace-42_AB=" } });
    expect(res.headers.get("x-request-id")).toBe("trace-42_AB=");
    expect((await expectProblem(res, 404)).requestId).toBe("trace-42_AB=");
    const ok = await api("/health");
    expect(ok.headers.get("x-request-id")).toMatch(fresh);
  });

  it("never echoes a hostile incoming id: markup, spaces, 1000 characters get a fresh req_ id", async () => {
    for (const hostile of [
      "<script>alert(1)</script>",
      "a".repeat(1000),
      "a".repeat(65),
      "id with spaces",
      "a\tb",
      "x;y",
    ]) {
      const res = await api("/v1/nope", { headers: { "x-request-id": hostile } });
      const header = res.headers.get("x-request-id") ?? "";
      expect(header, hostile).toMatch(fresh);
      const text = await res.text();
      expect(text).not.toContain(hostile);
      expect(JSON.parse(text).requestId).toBe(header);
    }
    // Newlines cannot even be sent: the platform refuses them in a header value (no header splitting).
    expect(() => new Headers({ "x-request-id": "a\r\nset-cookie: x=1" })).toThrow(TypeError);
  });

  it("a 500 names the request id in its body and in the error log, not the cause", async () => {
    const app = createApp();
    app.get("/boom", () => {
      throw new Error("secret cause");
    });
    const logged: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: string) => void logged.push(line));
    try {
      const res = await app.request("/boom", { headers: { "x-request-id": "<b>" } }, env);
      const p = await expectProblem(res, 500);
      expect(p.requestId).toMatch(fresh);
      expect(res.headers.get("x-request-id")).toBe(p.requestId);
      expect(p.detail).toContain(p.requestId);
      expect(p.detail).not.toContain("secret cause");
      expect(JSON.parse(logged[0] ?? "{}")).toMatchObject({ requestId: p.requestId, error: "Error: secret cause" });
    } finally {
      spy.mockRestore();
    }
  });
});
