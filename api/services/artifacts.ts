import type { VersionFile } from "../../db/schema";
import { sha256Hex, toHex } from "../lib/crypto";
import type { FieldError } from "../lib/errors";
import type { Manifest } from "./manifest";
import { inspectOnnx } from "./onnx_inspect";

export type ArtifactFile = { name: string; bytes: Uint8Array };

/**
 * Checks an artifact set against its manifest before anything is stored: every listed file present
 * and nothing else, sizes and SHA-256 equal, each variant's ONNX parses and declares the manifest's
 * inputs/output and points at its own external-data file, and the tokenizer parses. Returns the
 * problems found; an empty list means the set may be registered.
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
  return checkStructure(manifest, byName);
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
    } catch (e) {
      errors.push({
        path: "files.tokenizer.json",
        message: `is not a Hugging Face tokenizer.json: ${(e as Error).message}`,
      });
    }
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
 * structural check on the small files.
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
  return checkStructure(manifest, small);
}
