// `selfsup datasets upload FILE`: hash, declare, send the bytes straight to R2 through presigned URLs
// (multipart for large files), then /complete, and waits while the API checks the file in the
// background (GET until `ready`; `invalid` ends in an error listing the problems). Interrupted multipart uploads resume: finished parts
// and their ETags are kept in .selfsup/uploads/<sha256>.json and skipped on the next run.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { constants, gunzipSync } from "node:zlib";
import { type paths, type SelfsupClient, SelfsupError, unwrap } from "../client";

type UploadTarget = paths["/v1/datasets/{id}/upload-urls"]["post"]["responses"][200]["content"]["application/json"];

import { bytes as fmtBytes, ProgressBar } from "./format";

type State = { datasetId: string; baseUrl: string; parts: Record<string, string> };

export async function sha256File(file: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const bar = new ProgressBar("hashing  ");
  let done = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    bar.update(size ? done / size : 1, fmtBytes(done));
  }
  bar.done(fmtBytes(size));
  return hash.digest("hex");
}

type Modality = "text" | "image" | "timeseries";

/** The API `format` of a file, from its name (`--format` overrides). */
export function guessFormat(file: string): string {
  const name = path.basename(file).toLowerCase();
  if (name.endsWith(".tgz")) return "tar.gz";
  // MNIST-style names: train-images-idx3-ubyte(.gz)
  if (/idx3-ubyte(\.gz)?$/.test(name) || /\.idx(\.gz)?$/.test(name)) return name.endsWith(".gz") ? "idx.gz" : "idx";
  for (const f of ["jsonl.gz", "txt.gz", "csv.gz", "tar.gz", "jsonl", "txt", "csv", "zip", "tar"]) {
    if (name.endsWith(`.${f}`)) return f;
  }
  return "txt";
}

/**
 * The dataset's modality (`--modality` overrides): archives and IDX hold images, CSV holds series;
 * a JSONL file holds series when its first record has `"values"`, else text.
 */
export async function guessModality(file: string, format: string): Promise<Modality> {
  if (/^(zip|tar|tar\.gz|idx|idx\.gz)$/.test(format)) return "image";
  if (format.startsWith("csv")) return "timeseries";
  if (!format.startsWith("jsonl")) return "text";
  const fh = await open(file, "r");
  try {
    const buf = new Uint8Array(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    let head = buf.subarray(0, bytesRead);
    if (format.endsWith(".gz")) {
      try {
        head = new Uint8Array(gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH }));
      } catch {
        return "text";
      }
    }
    const first =
      new TextDecoder()
        .decode(head)
        .split("\n")
        .find((l) => l.trim() !== "") ?? "";
    return /^\s*\{.*"values"\s*:/.test(first) ? "timeseries" : "text";
  } finally {
    await fh.close();
  }
}

async function putWithRetry(url: string, body: Uint8Array): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { method: "PUT", body: new Blob([body as Uint8Array<ArrayBuffer>]) });
      if (!res.ok) throw new Error(`PUT answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      return res.headers.get("etag") ?? "";
    } catch (e) {
      if (attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
}

export async function uploadDataset(
  client: SelfsupClient,
  baseUrl: string,
  file: string,
  opts: { name?: string; purpose: "pretrain" | "probe"; format?: string; modality?: Modality; stateDir: string },
) {
  const size = statSync(file).size;
  const sha256 = await sha256File(file, size);
  const statePath = path.join(opts.stateDir, "uploads", `${sha256}.json`);
  let state: State | null = existsSync(statePath) ? JSON.parse(readFileSync(statePath, "utf8")) : null;
  let target: UploadTarget | undefined;
  if (state && state.baseUrl === baseUrl) {
    const current = await client.GET("/v1/datasets/{id}", { params: { path: { id: state.datasetId } } });
    if (current.data?.status === "uploading") {
      const missing = Object.keys(state.parts).length;
      process.stderr.write(`resuming upload of ${state.datasetId} (${missing} part(s) already sent)\n`);
      target = await unwrap(
        client.POST("/v1/datasets/{id}/upload-urls", { params: { path: { id: state.datasetId } }, body: {} }),
      );
    } else state = null;
  } else state = null;
  if (!state) {
    const format = opts.format ?? guessFormat(file);
    const created = await unwrap(
      client.POST("/v1/datasets", {
        body: {
          name: opts.name ?? path.basename(file),
          modality: opts.modality ?? (await guessModality(file, format)),
          purpose: opts.purpose,
          format,
          bytes: size,
          sha256,
        },
      }),
    );
    state = { datasetId: created.id, baseUrl, parts: {} };
    target = created.upload;
  }
  mkdirSync(path.dirname(statePath), { recursive: true });
  const save = () => writeFileSync(statePath, JSON.stringify(state));
  save();

  const bar = new ProgressBar("uploading");
  if (target?.type === "multipart") {
    const fh = await open(file, "r");
    try {
      let sent = Object.keys(state.parts).length * target.partSize;
      for (const part of target.parts) {
        if (state.parts[part.partNumber]) continue;
        const offset = (part.partNumber - 1) * target.partSize;
        const length = Math.min(target.partSize, size - offset);
        const buf = new Uint8Array(length);
        await fh.read(buf, 0, length, offset);
        state.parts[part.partNumber] = await putWithRetry(part.url, buf);
        save();
        sent += length;
        bar.update(sent / size, `${fmtBytes(sent)} / ${fmtBytes(size)}`);
      }
    } finally {
      await fh.close();
    }
  } else if (target) {
    await putWithRetry(target.url, new Uint8Array(readFileSync(file)));
  }
  bar.done(fmtBytes(size));
  const parts = Object.entries(state.parts).map(([n, etag]) => ({ partNumber: Number(n), etag }));
  const started = await unwrap(
    client.POST("/v1/datasets/{id}/complete", {
      params: { path: { id: state.datasetId } },
      body: parts.length > 0 ? { parts } : {},
    }),
  );
  // The bytes are in R2 now: a later run must not resume this upload, whatever the check says.
  rmSync(statePath, { force: true });
  const done = await waitForCheck(client, started);
  if (done.status === "ready") return done;
  // Invalid, or sent back to `uploading` (upload replaced, check failed repeatedly): the errors say which.
  const errors = (done.errors ?? []).map((e) => ({ path: issuePath(e), message: e.message }));
  const first = errors[0];
  throw new SelfsupError(done.status === "invalid" ? 422 : 409, {
    detail: `Dataset ${done.id} is ${done.status}${first ? `: ${first.path === "file" ? "" : `${first.path}: `}${first.message}` : ""}`,
    errors,
  });
}

type Dataset = paths["/v1/datasets/{id}"]["get"]["responses"][200]["content"]["application/json"];

/** Where an issue is: `line 7, column t5`, `member cat/1.png`, or `file` (as the API's problems name it). */
function issuePath(e: { line?: number; column?: string; member?: string }): string {
  if (e.member) return `member ${e.member}`;
  if (e.line) return e.column ? `line ${e.line}, column ${e.column}` : `line ${e.line}`;
  return "file";
}

/** Polls the dataset while the API checks it in the background, with a progress bar of the bytes checked. */
async function waitForCheck(client: SelfsupClient, d: Dataset): Promise<Dataset> {
  const bar = new ProgressBar("checking ");
  let current = d;
  for (let delay = 250; current.status === "validating"; delay = Math.min(2000, delay * 1.5)) {
    const c = current.check;
    if (c)
      bar.update(
        c.bytes_total ? c.bytes_done / c.bytes_total : 0,
        `${fmtBytes(c.bytes_done)} / ${fmtBytes(c.bytes_total)}`,
      );
    await new Promise((r) => setTimeout(r, delay));
    current = await unwrap(client.GET("/v1/datasets/{id}", { params: { path: { id: d.id } } }));
  }
  bar.done(current.status);
  return current;
}
