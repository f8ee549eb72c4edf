import { env } from "cloudflare:test";
import type { Manifest } from "../api/services/manifest";
import { api } from "./helpers";

// The committed tiny encoder (tests/fixtures/tiny-encoder), handed to the isolate as data blobs by
// vitest.config.ts.
const blobs = env as unknown as Record<string, ArrayBuffer> & { FIXTURE_FILES: Record<string, string> };

export function fixtureBytes(name: string): Uint8Array {
  const binding = blobs.FIXTURE_FILES[name];
  if (!binding) throw new Error(`fixture file ${name} missing (have: ${Object.keys(blobs.FIXTURE_FILES).join(", ")})`);
  return new Uint8Array(blobs[binding] as ArrayBuffer);
}

export type FixtureManifest = Manifest;

export const fixtureManifest = (): FixtureManifest =>
  JSON.parse(new TextDecoder().decode(fixtureBytes("manifest.json")));

/** The multipart body the import route takes: `manifest` plus every listed file. */
export function importForm(manifest: FixtureManifest = fixtureManifest(), files = Object.keys(manifest.files)) {
  const form = new FormData();
  form.append("manifest", JSON.stringify(manifest));
  for (const f of files) form.append("files", new File([fixtureBytes(f)], f));
  return form;
}

export async function importFixture(
  key: string,
  model = "tiny",
  patch: (m: FixtureManifest) => FixtureManifest = (m) => m,
) {
  const res = await api(`/v1/models/${model}/versions`, {
    method: "POST",
    key,
    body: importForm(patch(fixtureManifest())),
  });
  if (res.status !== 201) throw new Error(`import failed: ${res.status} ${await res.text()}`);
  return res.json<{ id: string; version: number; ref: string }>();
}
