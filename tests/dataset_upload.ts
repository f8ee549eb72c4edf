// Declares a dataset, sends its bytes through PUT /content and calls /complete, as a client would.
import { expect } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { api } from "./helpers";

export type DatasetBody = {
  id: string;
  status: string;
  modality: string;
  format: string;
  stats: Record<string, unknown> | null;
  errors: { line?: number; column?: string; member?: string; message: string }[] | null;
};

export async function declareDataset(
  key: string,
  bytes: Uint8Array,
  meta: { modality: string; format: string; purpose?: "pretrain" | "probe"; name?: string },
): Promise<Response> {
  return api("/v1/datasets", {
    method: "POST",
    key,
    json: {
      name: meta.name ?? "set",
      purpose: "pretrain",
      ...meta,
      bytes: bytes.byteLength,
      sha256: await sha256Hex(bytes),
    },
  });
}

/** Uploads `bytes` and answers /complete's response (200 ready, 422 invalid). */
export async function uploadAndComplete(
  key: string,
  bytes: Uint8Array,
  meta: { modality: string; format: string; purpose?: "pretrain" | "probe"; name?: string },
): Promise<{ id: string; res: Response }> {
  const created = await declareDataset(key, bytes, meta);
  expect(created.status, await created.clone().text()).toBe(201);
  const { id } = await created.json<{ id: string }>();
  const put = await api(`/v1/datasets/${id}/content`, {
    method: "PUT",
    key,
    body: bytes,
    headers: { "content-type": "application/octet-stream" },
  });
  expect(put.status, await put.clone().text()).toBe(200);
  return { id, res: await api(`/v1/datasets/${id}/complete`, { method: "POST", key }) };
}

/** Uploads and expects `ready`; returns the dataset. */
export async function readySet(
  key: string,
  bytes: Uint8Array,
  meta: { modality: string; format: string; purpose?: "pretrain" | "probe"; name?: string },
): Promise<DatasetBody> {
  const { res } = await uploadAndComplete(key, bytes, meta);
  expect(res.status, await res.clone().text()).toBe(200);
  const d = await res.json<DatasetBody>();
  expect(d.status).toBe("ready");
  return d;
}
