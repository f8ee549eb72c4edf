// A fine-tuned artifact built in the test from the committed tiny text encoder: its graph plus a
// linear head (`logits = embeddings · W + b`) appended as a second graph fragment. Protobuf merges
// a repeated embedded message field, so ModelProto bytes + one more `graph` field is the same
// graph with the fragment's nodes, initializers and outputs added — no ONNX library needed.
import { sha256Hex } from "../api/lib/crypto";
import type { Manifest } from "../api/services/manifest";
import { fixtureBytes, fixtureManifest } from "./fixture";
import { api } from "./helpers";
import { type EncoderDir, encoderFile, encoderManifest } from "./modal_fixture";
import { len, num, str } from "./protobuf";

const utf8 = new TextEncoder();

const FLOAT = 1;

// TensorProto { dims = 1; data_type = 2; name = 8; raw_data = 9 }, float32 little-endian.
function floatTensor(name: string, dims: number[], values: Float32Array): number[] {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => {
    view.setFloat32(i * 4, v, true);
  });
  return [...dims.flatMap((d) => num(1, d)), ...num(2, FLOAT), ...str(8, name), ...len(9, raw)];
}

// NodeProto { input = 1; output = 2; name = 3; op_type = 4 }.
const node = (op: string, inputs: string[], output: string) => [
  ...inputs.flatMap((i) => str(1, i)),
  ...str(2, output),
  ...str(3, `head_${op}`),
  ...str(4, op),
];

// ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1 } } } }.
function floatOutput(name: string, k: number): number[] {
  const shape = [...len(1, str(2, "batch")), ...len(1, num(1, k))];
  return [...str(1, name), ...len(2, len(1, [...num(1, FLOAT), ...len(2, shape)]))];
}

/**
 * `model` with a linear head on its output `from`: a new output `output` of shape [batch, K] where
 * K = bias.length and `weights` is [D, K] row-major.
 */
export function withHead(
  model: Uint8Array,
  head: { from: string; output: string; weights: Float32Array; bias: Float32Array },
): Uint8Array {
  const k = head.bias.length;
  const d = head.weights.length / k;
  const fragment = [
    ...len(1, node("MatMul", [head.from, "head_w"], "head_mm")),
    ...len(1, node("Add", ["head_mm", "head_b"], head.output)),
    ...len(5, floatTensor("head_w", [d, k], head.weights)),
    ...len(5, floatTensor("head_b", [k], head.bias)),
    ...len(12, floatOutput(head.output, k)),
  ];
  const out = new Uint8Array(model.length + len(7, fragment).length);
  out.set(model);
  out.set(len(7, fragment), model.length);
  return out;
}

export type Artifact = { manifest: Manifest & Record<string, unknown>; files: Record<string, Uint8Array> };

/** The fixture plus stand-in PyTorch weights and any files in `replace`, digests recomputed. */
export async function artifact(
  replace: Record<string, Uint8Array> = {},
  extra: Record<string, unknown> = {},
): Promise<Artifact> {
  const manifest = { ...fixtureManifest(), weights: "encoder.safetensors", ...extra } as Artifact["manifest"];
  manifest.files = { ...manifest.files };
  const all: Record<string, Uint8Array> = { "encoder.safetensors": utf8.encode("stand-in safetensors"), ...replace };
  const files: Record<string, Uint8Array> = {};
  for (const name of new Set([...Object.keys(manifest.files), ...Object.keys(all)])) {
    const bytes = all[name] ?? fixtureBytes(name);
    files[name] = bytes;
    manifest.files[name] = { sha256: await sha256Hex(bytes), bytes: bytes.byteLength };
  }
  return { manifest, files };
}

/**
 * The head every fine-tuned fixture uses: logit j = `scale` × embedding component j (before the
 * edge's L2 normalisation), so a test can predict the ranking from /v1/embeddings.
 */
export function pickHead(labels: string[], dims = 128, scale = 10) {
  const k = labels.length;
  const weights = new Float32Array(dims * k);
  for (let j = 0; j < k; j++) weights[j * k + j] = scale;
  return { from: "embeddings", output: "logits", weights, bias: new Float32Array(k) };
}

/** A fine-tuned artifact: both variants with the head, `head` and the fine-tune objective. */
export async function finetunedArtifact(labels: string[], extra: Record<string, unknown> = {}): Promise<Artifact> {
  const head = pickHead(labels);
  const m = fixtureManifest();
  const replace: Record<string, Uint8Array> = {};
  for (const v of Object.values(m.variants)) if (v) replace[v.model] = withHead(fixtureBytes(v.model), head);
  return artifact(replace, {
    objective: "classify",
    head: { output: "logits", labels, activation: "softmax" },
    ...extra,
  });
}

/** Registers an artifact through the import route as a new version of `model`. */
export async function importArtifact(key: string, model: string, a: Artifact) {
  const form = new FormData();
  form.append("manifest", JSON.stringify(a.manifest));
  for (const [name, bytes] of Object.entries(a.files)) form.append("files", new File([bytes], name));
  const res = await api(`/v1/models/${model}/versions`, { method: "POST", key, body: form });
  if (res.status !== 201) throw new Error(`import failed: ${res.status} ${await res.text()}`);
  return res.json<{ id: string; version: number; ref: string }>();
}

/** An image or series fixture encoder turned fine-tuned the same way (head on its `embeddings`). */
export async function modalFinetuned(dir: EncoderDir, labels: string[]): Promise<Artifact> {
  const manifest = {
    ...encoderManifest(dir),
    objective: "classify",
    head: { output: "logits", labels, activation: "softmax" },
  } as Artifact["manifest"];
  const head = pickHead(labels, manifest.dims);
  const models = new Set(Object.values(manifest.variants).map((v) => v?.model));
  const files: Record<string, Uint8Array> = {};
  manifest.files = { ...manifest.files };
  for (const name of Object.keys(manifest.files)) {
    const bytes = models.has(name) ? withHead(encoderFile(dir, name), head) : encoderFile(dir, name);
    files[name] = bytes;
    manifest.files[name] = { sha256: await sha256Hex(bytes), bytes: bytes.byteLength };
  }
  return { manifest, files };
}
