// What a newcomer tripped over (issue 14, item 7): /v1/tokenize takes `input` like /v1/embeddings,
// /complete with a JSON content type and no body, an image sent to a text model, and /docs without
// internet (the page may load scripts only from this origin).
import { beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { imageInText } from "../api/services/encoder/inputs";
import { waitForCheck } from "./dataset_upload";
import { registerFixture } from "./embeddings_fixture";
import corpus from "./fixtures/corpus/moby-dick-excerpt.txt?raw";
import jpegUrl from "./fixtures/images/grey.jpg?inline";
import pngUrl from "./fixtures/images/grey.png?inline";
import { api, expectProblem, newTenant } from "./helpers";

const MODEL = "tiny";
let key = "";

beforeAll(async () => {
  key = (await newTenant(["admin"])).secret;
  await registerFixture(key, MODEL);
});

const base64Of = (dataUrl: string) => dataUrl.slice(dataUrl.indexOf(",") + 1);

describe("POST /v1/tokenize", () => {
  const tokenize = (body: Record<string, unknown>) => api("/v1/tokenize", { method: "POST", key, json: body });

  it("takes `input` as /v1/embeddings does, and `inputs` as before, with the same answer", async () => {
    const texts = ["Call me Ishmael.", "The whale!"];
    const a = await tokenize({ model: MODEL, input: texts });
    const b = await tokenize({ model: MODEL, inputs: texts });
    expect(a.status, await a.clone().text()).toBe(200);
    expect(b.status).toBe(200);
    const [ja, jb] = [await a.json<{ data: { ids: number[] }[] }>(), await b.json<{ data: { ids: number[] }[] }>()];
    expect(ja.data).toHaveLength(2);
    expect(ja).toEqual(jb);
    const one = await tokenize({ model: MODEL, input: texts[0] });
    expect((await one.json<{ data: { ids: number[] }[] }>()).data[0]?.ids).toEqual(ja.data[0]?.ids);
  });

  it("400 naming the fields for both or neither, and for an empty list", async () => {
    const both = await expectProblem(await tokenize({ model: MODEL, input: "a", inputs: "a" }), 400);
    expect(both.detail).toMatch(/only one/);
    const neither = await expectProblem(await tokenize({ model: MODEL }), 400);
    expect(neither.errors?.[0]?.path).toBe("input");
    await expectProblem(await tokenize({ model: MODEL, input: [] }), 400);
  });

  it("the spec documents input and inputs, with non-empty lists", async () => {
    const spec = await (await api("/openapi.json")).json<{
      paths: Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }>;
    }>();
    const schema = spec.paths["/v1/tokenize"]?.post.requestBody.content["application/json"]?.schema as {
      properties: Record<string, { anyOf?: { type: string; minItems?: number }[] }>;
      required?: string[];
    };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["input", "inputs"]));
    expect(schema.required ?? []).not.toContain("inputs");
    expect(schema.properties.input?.anyOf?.find((s) => s.type === "array")?.minItems).toBe(1);
  });
});

describe("POST /v1/datasets/{id}/complete", () => {
  it("works with content-type: application/json and an empty body", async () => {
    const bytes = new TextEncoder().encode(corpus);
    const created = await api("/v1/datasets", {
      method: "POST",
      key,
      json: {
        name: "c",
        modality: "text",
        purpose: "pretrain",
        format: "txt",
        bytes: bytes.byteLength,
        sha256: await sha256Hex(bytes),
      },
    });
    const { id } = await created.json<{ id: string }>();
    const put = await api(`/v1/datasets/${id}/content`, {
      method: "PUT",
      key,
      body: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(put.status).toBe(200);
    const res = await api(`/v1/datasets/${id}/complete`, {
      method: "POST",
      key,
      headers: { "content-type": "application/json" },
    });
    // The empty JSON body is accepted: the check is queued (202), and the set becomes ready.
    expect(res.status, await res.clone().text()).toBe(202);
    expect((await waitForCheck(key, id)).status).toBe("ready");
    // A body that is there but is not JSON is still refused.
    const bad = await api(`/v1/datasets/${id}/complete`, {
      method: "POST",
      key,
      body: "{",
      headers: { "content-type": "application/json" },
    });
    await expectProblem(bad, 400);
  });
});

describe("an image sent to a text model", () => {
  const embed = (input: unknown) => api("/v1/embeddings", { method: "POST", key, json: { model: MODEL, input } });

  it("is a 400 naming the modality, for base64 and data: URLs, PNG and JPEG", async () => {
    for (const [input, format, at] of [
      [base64Of(pngUrl), "PNG", "input"],
      [pngUrl, "PNG", "input"],
      [["some text", base64Of(jpegUrl)], "JPEG", "input[1]"],
    ] as const) {
      const p = await expectProblem(await embed(input), 400);
      expect(p.detail).toContain("text model");
      expect(p.detail).toContain(format);
      expect(p.errors?.[0]?.path).toBe(at);
    }
  });

  it("text that only looks a little like base64 stays text", async () => {
    expect(imageInText("iVBORw0KGgo is how a PNG starts in base64")).toBeNull();
    expect(imageInText("/9j/ is how a JPEG starts")).toBeNull();
    expect(imageInText("data: image processing notes")).toBeNull();
    expect((await embed("iVBORw0KGgo is how a PNG starts in base64")).status).toBe(200);
  });
});

describe("GET /docs", () => {
  it("loads scripts only from this origin, and the script route serves the reference bundle", async () => {
    const res = await api("/docs");
    expect(res.status).toBe(200);
    const html = await res.text();
    const srcs = [...html.matchAll(/<script[^>]*\bsrc="([^"]*)"/g)].map((m) => m[1] as string);
    expect(srcs.length).toBeGreaterThan(0);
    for (const src of srcs) expect(new URL(src, "http://selfsup.test").origin).toBe("http://selfsup.test");
    // No module script importing from elsewhere, and no font or stylesheet from a CDN.
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[^"'\s]*\.(js|css|woff2?)\b/);
    expect(html).not.toMatch(/cdn\.jsdelivr|fonts\.scalar/);

    for (const src of srcs) {
      const js = await api(src);
      expect(js.status).toBe(200);
      expect(js.headers.get("content-type")).toMatch(/javascript/);
      const body = await js.text();
      expect(body.length).toBeGreaterThan(100_000);
      expect(body).toContain("createApiReference");
      const again = await api(src, { headers: { "if-none-match": js.headers.get("etag") ?? "" } });
      expect(again.status).toBe(304);
    }
  });
});
