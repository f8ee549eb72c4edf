// Declares a dataset, sends its bytes through PUT /content and calls /complete, as a client would,
// then polls GET until the background check (the work queue's consumer) has decided.
import { expect } from "vitest";
import { sha256Hex } from "../api/lib/crypto";
import { issuePath } from "../api/routes/views/dataset_views";
import type { DatasetIssue } from "../api/services/dataset_check";
import { api } from "./helpers";

export type DatasetBody = {
  id: string;
  status: string;
  modality: string;
  format: string;
  sha256: string;
  stats: Record<string, unknown> | null;
  errors: { line?: number; column?: string; member?: string; message: string }[] | null;
  check: { bytes_done: number; bytes_total: number; started_at: string } | null;
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

/** Declares a dataset and sends its bytes (PUT /content) without calling /complete; returns its id. */
export async function uploadOnly(
  key: string,
  bytes: Uint8Array,
  meta: { modality: string; format: string; purpose?: "pretrain" | "probe"; name?: string },
): Promise<string> {
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
  return id;
}

/** Polls GET /v1/datasets/{id} until the background check leaves `validating`; returns the dataset. */
export async function waitForCheck(key: string, id: string, timeoutMs = 45_000): Promise<DatasetBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api(`/v1/datasets/${id}`, { key });
    expect(res.status, await res.clone().text()).toBe(200);
    const d = await res.json<DatasetBody>();
    if (d.status !== "validating") return d;
    if (Date.now() > deadline)
      throw new Error(`dataset ${id} still validating after ${timeoutMs} ms: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * POSTs /complete (202: the check is queued) and waits for the queue consumer's verdict.
 * Returns /complete's own response and the dataset once it left `validating`.
 */
export async function completeAndWait(
  key: string,
  id: string,
  json?: unknown,
): Promise<{ id: string; res: Response; dataset: DatasetBody }> {
  const res = await api(`/v1/datasets/${id}/complete`, { method: "POST", key, ...(json ? { json } : {}) });
  if (res.status !== 202 && res.status !== 200) {
    const dataset = await (await api(`/v1/datasets/${id}`, { key })).json<DatasetBody>();
    return { id, res, dataset };
  }
  const first = await res.clone().json<DatasetBody>();
  expect(["validating", "ready"]).toContain(first.status);
  return { id, res, dataset: await waitForCheck(key, id) };
}

/** Uploads `bytes`, calls /complete and waits for the check: `dataset` ends `ready` or `invalid`. */
export async function uploadAndComplete(
  key: string,
  bytes: Uint8Array,
  meta: { modality: string; format: string; purpose?: "pretrain" | "probe"; name?: string },
): Promise<{ id: string; res: Response; dataset: DatasetBody }> {
  const id = await uploadOnly(key, bytes, meta);
  const done = await completeAndWait(key, id);
  expect(done.res.status, await done.res.clone().text()).toBe(202);
  return done;
}

/**
 * Expects the check to have found the set `invalid`; returns its errors as the 422 problem the
 * synchronous /complete answered (`detail` names the first issue, `errors[].path` each place), so
 * assertions read the same.
 */
export async function expectInvalid(r: { id: string; dataset: DatasetBody }): Promise<{
  detail: string;
  errors: { path: string; message: string }[];
}> {
  expect(r.dataset.status, JSON.stringify(r.dataset)).toBe("invalid");
  const errors = r.dataset.errors ?? [];
  expect(errors.length).toBeGreaterThan(0);
  const first = errors[0] as DatasetIssue;
  const where = issuePath(first);
  return {
    detail: `Dataset ${r.id} is invalid: ${where === "file" ? "" : `${where}: `}${first.message}`,
    errors: errors.map((e) => ({ path: issuePath(e), message: e.message })),
  };
}

/** Uploads and expects `ready`; returns the dataset. */
export async function readySet(
  key: string,
  bytes: Uint8Array,
  meta: { modality: string; format: string; purpose?: "pretrain" | "probe"; name?: string },
): Promise<DatasetBody> {
  const { dataset } = await uploadAndComplete(key, bytes, meta);
  expect(dataset.status, JSON.stringify(dataset.errors)).toBe("ready");
  return dataset;
}
