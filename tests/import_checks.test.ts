// Issue 14 item 3: an import is registered only if it can run. Each bad artifact below passed the
// old checks (sha256, sizes, ONNX signature) and broke later at embed time or lied in /info.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { checkRuns } from "../api/services/artifacts";
import { fitsIsolate } from "../api/services/encoder/variants";
import { type Manifest, parseManifest } from "../api/services/manifest";
import { inspectOnnx } from "../api/services/onnx_inspect";
import { type FixtureManifest, fixtureBytes, fixtureManifest } from "./fixture";
import { api, count, expectProblem, newTenant } from "./helpers";

/** The fixture with some files replaced (manifest sha256 and bytes updated to match, as an attacker would). */
async function tampered(
  replace: Record<string, Uint8Array>,
  patch: (m: FixtureManifest) => FixtureManifest = (m) => m,
) {
  const manifest = patch(fixtureManifest());
  const files: Record<string, Uint8Array> = {};
  for (const name of Object.keys(manifest.files)) {
    const bytes = replace[name] ?? fixtureBytes(name);
    files[name] = bytes;
    manifest.files[name] = { sha256: await sha256Hex(bytes), bytes: bytes.byteLength };
  }
  return { manifest, files };
}

function form(manifest: FixtureManifest, files: Record<string, Uint8Array>) {
  const f = new FormData();
  f.append("manifest", JSON.stringify(manifest));
  for (const [name, bytes] of Object.entries(files)) f.append("files", new File([bytes], name));
  return f;
}

/** `bytes` with the first occurrence of `from` replaced by `to` (same length). */
function patchBytes(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const a = new TextEncoder().encode(from);
  const b = new TextEncoder().encode(to);
  const out = bytes.slice();
  for (let i = 0; i + a.length <= out.length; i++) {
    if (a.every((x, j) => out[i + j] === x)) {
      out.set(b, i);
      return out;
    }
  }
  throw new Error(`${from} not found`);
}

/**
 * The kernel file with its int8 weight bytes shuffled (header, scales and tables kept): it loads and
 * runs, but it is another encoder.
 */
function scrambled(kernel: Uint8Array): Uint8Array {
  const out = kernel.slice();
  // The fixture's layer weights fill most of the file's second half; every 7th byte rotated.
  for (let i = out.length >> 1; i < out.length - 4096; i += 7) out[i] = ((out[i] as number) + 61) & 0xff;
  return out;
}

const tokenizerWithTruncation = (maxLength: number) => {
  const json = JSON.parse(new TextDecoder().decode(fixtureBytes("tokenizer.json")));
  json.truncation = { ...json.truncation, max_length: maxLength };
  return new TextEncoder().encode(JSON.stringify(json));
};

describe("import runs each graph once before registering", () => {
  const cases: [string, () => ReturnType<typeof tampered>, number, RegExp, string][] = [
    [
      "a corrupted ONNX protobuf (a node's op type) whose sha256 and size were updated",
      () => tampered({ "model.onnx": patchBytes(fixtureBytes("model.onnx"), "MatMul", "MatMuk") }),
      422,
      /does not load in onnxruntime-web/,
      "files.model.onnx",
    ],
    [
      "dims 512 on a 128-dimensional graph",
      () => tampered({}, (m) => ({ ...m, dims: 512 })),
      422,
      /512.*128|128.*512/,
      "dims",
    ],
    [
      "manifest max_tokens 256 vs tokenizer.json truncation 128",
      () => tampered({}, (m) => ({ ...m, max_tokens: 256 })),
      422,
      /256.*truncates at 128/,
      "max_tokens",
    ],
    [
      "max_tokens beyond the graph's position embeddings (tokenizer agreeing)",
      () => tampered({ "tokenizer.json": tokenizerWithTruncation(512) }, (m) => ({ ...m, max_tokens: 512 })),
      422,
      /fails on a probe input/,
      "files.model.int8.onnx",
    ],
    [
      "an external-data file shorter than the initializers need",
      () => tampered({ "model.onnx.data": fixtureBytes("model.onnx.data").slice(0, 1_000_000) }),
      422,
      /read up to byte/,
      "files.model.onnx.data",
    ],
    [
      "an int8 kernel file cut short",
      () => tampered({ "model.int8.kernel": fixtureBytes("model.int8.kernel").slice(0, 300_000) }),
      422,
      /kernel file does not load/,
      "files.model.int8.kernel",
    ],
    [
      "an int8 kernel whose weights are not the graph's",
      () => tampered({ "model.int8.kernel": scrambled(fixtureBytes("model.int8.kernel")) }),
      422,
      /kernel file disagrees with the int8 graph/,
      "files.model.int8.kernel",
    ],
    [
      "an input name the edge cannot feed",
      () => tampered({}, (m) => ({ ...m, inputs: ["input_ids", "mask"] })),
      400,
      /`mask` is not an input the edge can feed/,
      "manifest.inputs[1]",
    ],
  ];
  for (const [name, make, status, detail, path] of cases) {
    it(`refuses ${name}, naming it, and stores nothing`, async () => {
      const { secret, tenantId } = await newTenant(["train"]);
      const { manifest, files } = await make();
      const p = await expectProblem(
        await api("/v1/models/bad/versions", { method: "POST", key: secret, body: form(manifest, files) }),
        status,
      );
      expect(p.detail).toMatch(detail);
      expect(p.errors?.map((e) => e.path)).toContain(path);
      expect(await count("model_versions", "tenant_id = ?", tenantId)).toBe(0);
      expect((await env.ARTIFACTS.list({ prefix: `models/${tenantId}/` })).objects).toHaveLength(0);
    });
  }

  it("feeds inputs by name: a manifest listing them in another order gives the same vectors", async () => {
    const { secret } = await newTenant(["train", "embed"]);
    const good = await tampered({});
    const swapped = await tampered({}, (m) => ({ ...m, inputs: ["attention_mask", "input_ids"] }));
    for (const [name, a] of [
      ["inorder", good],
      ["swapped", swapped],
    ] as const) {
      const res = await api(`/v1/models/${name}/versions`, {
        method: "POST",
        key: secret,
        body: form(a.manifest, a.files),
      });
      expect(res.status, await res.clone().text()).toBe(201);
    }
    const input = ["Call me Ishmael.", "Some years ago, never mind how long precisely."];
    for (const precision of ["fp32", "int8"]) {
      const [x, y] = await Promise.all(
        ["inorder", "swapped"].map(async (model) => {
          const res = await api("/v1/embeddings", { method: "POST", key: secret, json: { model, input, precision } });
          expect(res.status).toBe(200);
          return (await res.json<{ data: { embedding: number[] }[] }>()).data.map((d) => d.embedding);
        }),
      );
      expect(y).toEqual(x);
    }
  });

  it("a variant too big for the isolate gets the structural check only; the int8 one runs", async () => {
    // The fixture's fp32 variant, declared as all-MiniLM-L6-v2-sized (90 MB of weights): too big to
    // load inside 128 MB, so checkRuns must not load it, and must run int8.
    const manifest = parseManifest(fixtureManifest());
    const big: Manifest = {
      ...manifest,
      files: { ...manifest.files, "model.onnx.data": { sha256: "0".repeat(64), bytes: 90_000_000 } },
    };
    expect(fitsIsolate(big, "fp32").fits).toBe(false);
    expect(fitsIsolate(big, "int8").fits).toBe(true);
    const read: string[] = [];
    const errors = await checkRuns(big, async (name) => {
      read.push(name);
      return fixtureBytes(name);
    });
    expect(errors).toEqual([]);
    expect(read).not.toContain("model.onnx.data");
    expect(read).toContain("model.int8.onnx.data");
    // Neither variant fits: refused, naming the sizes.
    const huge: Manifest = {
      ...big,
      files: { ...big.files, "model.int8.onnx.data": { sha256: "0".repeat(64), bytes: 90_000_000 } },
    };
    const refused = await checkRuns(huge, async (name) => fixtureBytes(name));
    expect(refused[0]?.path).toBe("variants");
    expect(refused[0]?.message).toMatch(/no variant fits.*int8 \(\d+\.\d MiB\), fp32/);
  });

  it("inspectOnnx reads input/output types and shapes and the external-data extent (as Python's onnx does)", () => {
    // Expected values printed by `onnx.load(..., load_external_data=False)` on the same file.
    const s = inspectOnnx(fixtureBytes("model.onnx"));
    expect(s.inputInfo).toEqual([
      { name: "input_ids", elemType: 7, shape: ["batch", "sequence"] },
      { name: "attention_mask", elemType: 7, shape: ["batch", "sequence"] },
    ]);
    expect(s.outputInfo).toEqual([{ name: "embeddings", elemType: 1, shape: ["batch", "Divembeddings_dim_1"] }]);
    expect(s.externalDataEnd).toEqual({ "model.onnx.data": fixtureBytes("model.onnx.data").byteLength });
  });
});
