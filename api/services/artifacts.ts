import type { VersionFile } from "../../db/schema";
import { sha256Hex, toHex } from "../lib/crypto";
import type { FieldError } from "../lib/errors";
import { probeRun } from "./encoder/probe_run";
import { fitsIsolate, type Precision } from "./encoder/variants";
import type { Manifest } from "./manifest";
import { inspectOnnx, ONNX_FLOAT, ONNX_INT64, type OnnxSummary } from "./onnx_inspect";

export type ArtifactFile = { name: string; bytes: Uint8Array };

/**
 * Checks an artifact set against its manifest before anything is stored: every listed file present
 * and nothing else, sizes and SHA-256 equal, each variant's ONNX parses and declares the manifest's
 * inputs/output and points at its own external-data file, the tokenizer parses and agrees with
 * max_tokens, and each variant that fits the isolate runs on a probe input with the manifest's dims.
 * Returns the problems found; an empty list means the set may be registered.
 */
export async function checkArtifacts(manifest: Manifest, files: ArtifactFile[]): Promise<FieldError[]> {
  const errors: FieldError[] = [];
  const byName = new Map(files.map((f) => [f.name, f]));
  for (const name of Object.keys(manifest.files)) {
    if (!byName.has(name)) errors.push({ path: `files.${name}`, message: "listed in the manifest but not uploaded" });
  }
  for (const f of files) {
    const declared = manifest.files[f.name];
    if (!declared) {
      errors.push({
        path: `files.${f.name}`,
        message: "uploaded but not listed in manifest.files; list it or leave it out",
      });
      continue;
    }
    if (f.bytes.byteLength !== declared.bytes) {
      errors.push({
        path: `files.${f.name}`,
        message: `is ${f.bytes.byteLength} bytes, manifest says ${declared.bytes}`,
      });
      continue;
    }
    const actual = await sha256Hex(f.bytes);
    if (actual !== declared.sha256) {
      errors.push({ path: `files.${f.name}`, message: `sha256 is ${actual}, manifest says ${declared.sha256}` });
    }
  }
  if (errors.length > 0) return errors;
  const structural = checkStructure(manifest, byName);
  if (structural.length > 0) return structural;
  return checkRuns(manifest, async (name) => {
    const f = byName.get(name);
    if (!f) throw new Error(`${name} was not uploaded`);
    return f.bytes;
  });
}

/** Files that must be read whole for the structural check; everything else is only hashed. */
export const structuralFiles = (manifest: Manifest) =>
  new Set([
    ...Object.values(manifest.variants).map((v) => v.model),
    ...(manifest.modality === "text" ? ["tokenizer.json"] : []),
  ]);

/**
 * Each variant's ONNX parses, declares the manifest's inputs/output and points at its own
 * external-data file; the tokenizer parses. `byName` needs at least the `structuralFiles`.
 */
export function checkStructure(manifest: Manifest, byName: Map<string, { bytes: Uint8Array }>): FieldError[] {
  const errors: FieldError[] = [];
  for (const [variant, v] of Object.entries(manifest.variants)) {
    const file = byName.get(v.model);
    if (!file) continue;
    try {
      const onnx = inspectOnnx(file.bytes);
      for (const input of manifest.inputs) {
        if (!onnx.inputs.includes(input)) {
          errors.push({
            path: `variants.${variant}`,
            message: `${v.model} has no input \`${input}\` (it has: ${onnx.inputs.join(", ")})`,
          });
        }
      }
      if (!onnx.outputs.includes(manifest.output)) {
        errors.push({
          path: `variants.${variant}`,
          message: `${v.model} has no output \`${manifest.output}\` (it has: ${onnx.outputs.join(", ")})`,
        });
      }
      for (const loc of onnx.externalDataFiles) {
        if (loc !== v.data) {
          errors.push({
            path: `variants.${variant}`,
            message: `${v.model} reads external data from \`${loc}\`, but the variant's data file is \`${v.data ?? "(none)"}\``,
          });
        }
      }
      for (const [loc, end] of Object.entries(onnx.externalDataEnd)) {
        const size = manifest.files[loc]?.bytes;
        if (size !== undefined && end > size) {
          errors.push({
            path: `files.${loc}`,
            message: `is ${size} bytes, but ${v.model}'s initializers read up to byte ${end}; export the data file again`,
          });
        }
      }
      for (const input of onnx.inputInfo) {
        if (!manifest.inputs.includes(input.name)) {
          errors.push({
            path: "inputs",
            message: `${v.model} needs input \`${input.name}\`, which the manifest does not list, so it would never be fed`,
          });
        }
        const want = manifest.modality === "text" ? ONNX_INT64 : ONNX_FLOAT;
        if (manifest.inputs.includes(input.name) && input.elemType !== 0 && input.elemType !== want) {
          errors.push({
            path: `variants.${variant}`,
            message: `${v.model} input \`${input.name}\` has ONNX element type ${input.elemType}; the edge feeds ${want === ONNX_INT64 ? "int64" : "float32"}`,
          });
        }
      }
      errors.push(...checkHeadOutput(manifest, v.model, onnx, `variants.${variant}`));
      const out = onnx.outputInfo.find((o) => o.name === manifest.output);
      const last = out?.shape?.[out.shape.length - 1];
      if (typeof last === "number" && last > 0 && last !== manifest.dims) {
        errors.push({
          path: "dims",
          message: `is ${manifest.dims}, but ${v.model}'s output \`${manifest.output}\` has ${last} dimensions`,
        });
      }
      if (v.data && onnx.externalDataFiles.length === 0) {
        errors.push({
          path: `variants.${variant}`,
          message: `${v.model} keeps its weights inline; drop \`data\` or export with external data`,
        });
      }
    } catch (e) {
      errors.push({ path: `files.${v.model}`, message: `is not a valid ONNX model: ${(e as Error).message}` });
    }
  }
  const tok = byName.get("tokenizer.json");
  if (manifest.modality === "text" && tok) {
    try {
      const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(tok.bytes)) as {
        model?: unknown;
      };
      if (typeof parsed.model !== "object" || parsed.model === null) throw new Error("no `model` section");
      const cut = (parsed as { truncation?: { max_length?: unknown } | null }).truncation?.max_length;
      if (typeof cut === "number" && cut !== manifest.max_tokens) {
        // Refused rather than aligned: /info and the usage counts would otherwise promise a length
        // the tokenizer silently cuts.
        errors.push({
          path: "max_tokens",
          message: `is ${manifest.max_tokens}, but tokenizer.json truncates at ${cut} (truncation.max_length); make them equal`,
        });
      }
    } catch (e) {
      errors.push({
        path: "files.tokenizer.json",
        message: `is not a Hugging Face tokenizer.json: ${(e as Error).message}`,
      });
    }
  }
  return errors;
}

/** A head's logits output is declared by the graph, with K = the number of labels when its shape says. */
function checkHeadOutput(manifest: Manifest, model: string, onnx: OnnxSummary, path: string): FieldError[] {
  const head = manifest.head;
  if (!head) return [];
  const out = onnx.outputInfo.find((o) => o.name === head.output);
  if (!out) {
    return [
      { path, message: `${model} has no output \`${head.output}\` (head.output; it has: ${onnx.outputs.join(", ")})` },
    ];
  }
  const last = out.shape?.[out.shape.length - 1];
  if (typeof last === "number" && last > 0 && last !== head.labels.length) {
    return [
      {
        path: "head.labels",
        message: `lists ${head.labels.length} labels, but ${model}'s output \`${head.output}\` has ${last} logits`,
      },
    ];
  }
  return [];
}

/** Reads one of the artifact's files by name (from the request, or from R2). */
export type ArtifactBytes = (name: string) => Promise<Uint8Array>;

const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/**
 * Loads and runs each variant once on a probe input in onnxruntime-web (encoder/probe_run.ts),
 * after `checkStructure` passed. A variant too big to load inside the 128 MB isolate (decided by
 * `fitsIsolate`, the budget serving uses: all-MiniLM-L6-v2 fp32 with ≈ 90 MB of weights) is not
 * loaded: the structural check (protobuf, inputs, output shape, external-data extents) is what it
 * gets, and the int8 variant, which serving prefers, is the one that runs. At least one variant
 * must run, or nothing could serve.
 */
export async function checkRuns(manifest: Manifest, read: ArtifactBytes): Promise<FieldError[]> {
  const errors: FieldError[] = [];
  const tooBig: string[] = [];
  let ran = 0;
  for (const precision of ["int8", "fp32"] as const satisfies Precision[]) {
    const v = manifest.variants[precision];
    if (!v) continue;
    const { fits, bytes } = fitsIsolate(manifest, precision);
    if (!fits) {
      tooBig.push(`${precision} (${MiB(bytes)})`);
      continue;
    }
    ran++;
    const problem = await probeRun(manifest, precision, {
      model: await read(v.model),
      data: v.data ? await read(v.data) : null,
      tokenizerJson: manifest.modality === "text" ? await read("tokenizer.json") : null,
      kernel: v.kernel ? await read(v.kernel) : null,
    });
    if (problem) {
      const file = problem.field === "kernel" ? v.kernel : problem.field === "file" ? v.model : null;
      errors.push({
        path: file ? `files.${file}` : problem.field,
        message: `${file ? "" : `${v.model}: `}${problem.message}`,
      });
    }
  }
  if (ran === 0) {
    errors.push({
      path: "variants",
      message: `no variant fits the Worker's 128 MB isolate: ${tooBig.join(", ")}; add an int8 variant (\`python -m selfsup_trainer import\` exports one)`,
    });
  }
  return errors;
}

export const versionFiles = (prefix: string, manifest: Manifest): Record<string, VersionFile> =>
  Object.fromEntries(
    Object.entries(manifest.files).map(([name, f]) => [
      name,
      { key: `${prefix}/${name}`, sha256: f.sha256, bytes: f.bytes },
    ]),
  );

/**
 * Checks artifact files already in R2 under `prefix` (uploaded through presigned URLs) against the
 * manifest: present, sizes and SHA-256 equal (large files are hashed as a stream), then the
 * structural check on the small files and the probe run (`checkRuns`).
 */
export async function checkStoredArtifacts(
  bucket: R2Bucket,
  prefix: string,
  manifest: Manifest,
): Promise<FieldError[]> {
  const errors: FieldError[] = [];
  const whole = structuralFiles(manifest);
  const small = new Map<string, { bytes: Uint8Array }>();
  for (const [name, declared] of Object.entries(manifest.files)) {
    const obj = await bucket.get(`${prefix}/${name}`);
    if (!obj) {
      errors.push({ path: `files.${name}`, message: "listed in the manifest but not uploaded" });
      continue;
    }
    if (obj.size !== declared.bytes) {
      await obj.body.cancel();
      errors.push({ path: `files.${name}`, message: `is ${obj.size} bytes, manifest says ${declared.bytes}` });
      continue;
    }
    let actual: string;
    if (whole.has(name)) {
      const bytes = new Uint8Array(await obj.arrayBuffer());
      small.set(name, { bytes });
      actual = await sha256Hex(bytes);
    } else {
      const digest = new crypto.DigestStream("SHA-256");
      await obj.body.pipeTo(digest);
      actual = toHex(await digest.digest);
    }
    if (actual !== declared.sha256) {
      errors.push({ path: `files.${name}`, message: `sha256 is ${actual}, manifest says ${declared.sha256}` });
    }
  }
  if (errors.length > 0) return errors;
  const structural = checkStructure(manifest, small);
  if (structural.length > 0) return structural;
  return checkRuns(manifest, async (name) => {
    const have = small.get(name);
    if (have) return have.bytes;
    const obj = await bucket.get(`${prefix}/${name}`);
    if (!obj) throw new Error(`${prefix}/${name} vanished during the check`);
    const bytes = new Uint8Array(await obj.arrayBuffer());
    // Hashed above as a stream; what runs must be those same bytes, not a later overwrite.
    if ((await sha256Hex(bytes)) !== manifest.files[name]?.sha256) throw new Error(`${name} changed during the check`);
    return bytes;
  });
}
