/// <reference types="vite/client" />
// Fixtures for the image and time-series edge tests: the committed test images (through Vite's
// `?inline`, as data URLs) and the fixture encoders tests/fixtures/tiny-image-encoder and
// tests/fixtures/tiny-series-encoder, which vitest.config.ts binds as data blobs under
// `FIXTURE_DIRS[dir][file]` (the text fixture keeps its own FIXTURE_FILES).
import { env } from "cloudflare:test";
import type { Manifest } from "../api/services/manifest";
import { cosine } from "./embeddings_fixture";
import { api } from "./helpers";

const images = import.meta.glob<string>("./fixtures/images/*.{png,jpg}", {
  query: "?inline",
  import: "default",
  eager: true,
});

export function fromDataUrl(url: string): Uint8Array {
  const bin = atob(url.slice(url.indexOf(",") + 1));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** A committed test image's file bytes (tests/fixtures/images/<name>). */
export function imageFixture(name: string): Uint8Array {
  const url = images[`./fixtures/images/${name}`];
  if (!url) throw new Error(`tests/fixtures/images/${name} missing (have: ${Object.keys(images).join(", ")})`);
  return fromDataUrl(url);
}

/** base64 of bytes, as a client sends an image. */
export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

type DirsEnv = { FIXTURE_DIRS?: Record<string, Record<string, string>> } & Record<string, unknown>;
const denv = env as unknown as DirsEnv;

export type EncoderDir = "tiny-image-encoder" | "tiny-series-encoder";

export function encoderFile(dir: EncoderDir, name: string): Uint8Array {
  const files = denv.FIXTURE_DIRS?.[dir];
  if (!files) {
    throw new Error(
      `tests/fixtures/${dir} is not bound into the test isolate: vitest.config.ts must bind it under FIXTURE_DIRS`,
    );
  }
  const binding = files[name];
  if (!binding) throw new Error(`tests/fixtures/${dir}/${name} missing (have: ${Object.keys(files).join(", ")})`);
  return new Uint8Array(denv[binding] as ArrayBuffer);
}

export const encoderJson = <T>(dir: EncoderDir, name: string): T =>
  JSON.parse(new TextDecoder().decode(encoderFile(dir, name))) as T;

export const encoderManifest = (dir: EncoderDir) => encoderJson<Manifest>(dir, "manifest.json");

/** Registers a fixture encoder as a new version of `model` through the import route. */
export async function importEncoder(key: string, dir: EncoderDir, model: string, patch = (m: Manifest) => m) {
  const manifest = patch(encoderManifest(dir));
  const form = new FormData();
  form.append("manifest", JSON.stringify(manifest));
  for (const f of Object.keys(manifest.files)) form.append("files", new File([encoderFile(dir, f)], f));
  const res = await api(`/v1/models/${model}/versions`, { method: "POST", key, body: form });
  if (res.status !== 201) throw new Error(`import of ${dir} failed: ${res.status} ${await res.text()}`);
  return res.json<{ id: string; version: number; ref: string }>();
}

/**
 * Batch invariance: the smallest cosine between each input embedded alone and the same input
 * inside the whole batch, in order and reversed. `vectors` posts an embeddings body, returns rows.
 */
export async function worstBatchCosine(
  vectors: (body: Record<string, unknown>) => Promise<number[][]>,
  inputs: unknown[],
  precision: string,
): Promise<number> {
  const together = await vectors({ input: inputs, precision });
  const reversed = await vectors({ input: [...inputs].reverse(), precision });
  let worst = 1;
  for (let i = 0; i < inputs.length; i++) {
    const alone = (await vectors({ input: inputs[i], precision }))[0] as number[];
    worst = Math.min(
      worst,
      cosine(alone, together[i] as number[]),
      cosine(alone, reversed[inputs.length - 1 - i] as number[]),
    );
  }
  return worst;
}
