// The fixture encoder (tests/fixtures/tiny-encoder, or SELFSUP_FIXTURE_ENCODER) as the Workers tests
// see it: vitest.config.ts binds each file as a data blob; these helpers read and register it.
import { env } from "cloudflare:test";
import type { Manifest } from "../api/services/manifest";
import { fixtureBytes, importFixture } from "./fixture";

export { fixtureBytes, fixtureManifest } from "./fixture";
export { cosine } from "./math";

type FixtureEnv = { FIXTURE_FILES: Record<string, string> } & Record<string, unknown>;
const fenv = env as unknown as FixtureEnv;

export const fixtureNames = () => Object.keys(fenv.FIXTURE_FILES);
export const fixtureJson = <T>(name: string): T => JSON.parse(new TextDecoder().decode(fixtureBytes(name))) as T;

/** Registers the fixture as a new version of `name` through the import route; returns the version. */
export const registerFixture = (key: string, name: string, patch: (m: Manifest) => Manifest = (m) => m) =>
  importFixture(key, name, patch);

/**
 * Python's vectors per case: onnxruntime fp32 and int8, and the numpy reference of the int8 kernel
 * (`int8_kernel`, where the export shipped one; decision 0011).
 */
/** The manifest as an export without the int8 kernel would write it: int8 served by ORT-web. */
export function withoutKernel(m: Manifest): Manifest {
  const kernel = m.variants.int8?.kernel;
  if (!kernel) return m;
  const { kernel: _, ...int8 } = m.variants.int8 as NonNullable<Manifest["variants"]["int8"]>;
  const { [kernel]: __, ...files } = m.files;
  return { ...m, variants: { ...m.variants, int8 }, files };
}

export type Reference = {
  texts: string[];
  ids?: number[][];
  fp32: number[][];
  int8: number[][];
  int8Kernel?: number[][];
};

/** reference_embeddings.json from Python onnxruntime, in whichever of the shapes the exporter writes. */
export function fixtureReference(): Reference {
  const raw = fixtureJson<unknown>("reference_embeddings.json") as Record<string, unknown> | unknown[];
  const rows = Array.isArray(raw) ? raw : Array.isArray(raw.cases) ? (raw.cases as unknown[]) : null;
  if (rows) {
    const r = rows as { text: string; ids?: number[]; fp32: number[]; int8: number[]; int8_kernel?: number[] }[];
    return {
      texts: r.map((x) => x.text),
      ids: r.map((x) => x.ids ?? []),
      fp32: r.map((x) => x.fp32),
      int8: r.map((x) => x.int8),
      int8Kernel: r.every((x) => x.int8_kernel) ? r.map((x) => x.int8_kernel as number[]) : undefined,
    };
  }
  return raw as unknown as Reference;
}

export function decodeBase64Floats(s: string): Float32Array {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}
