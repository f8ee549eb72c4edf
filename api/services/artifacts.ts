import type { VersionFile } from "../../db/schema";
import { sha256Hex } from "../lib/crypto";
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
