// A dataset check in resumable steps (issue 15): uncompressed text and time-series files are read
// `chunkBytes` at a time from a byte offset, and everything the check has learned so far (the
// running SHA-256, the line splitter's partial last line, the check's counters, labels and
// duplicate keys) is saved to R2 after each step, so the next queue message, or a retry after a
// crash, goes on from there instead of from byte 0. The saved state can reach megabytes (the
// duplicate keys), past D1's row limit, hence an R2 object next to the staged upload; the row's
// `check_state` holds only the version checked and the progress shown to clients.
//
// Gzipped sets and image archives cannot resume mid-stream (a DEFLATE stream's window and the
// archive reader's position are not serialisable here), so they are checked in one invocation,
// yielding to the event loop as they go; a crash restarts them from byte 0.
import type { datasets } from "../../db/schema";
import { turn } from "../lib/priority";
import { Sha256, type Sha256State } from "../lib/sha256";
import { type CheckResult, type LineCheck, type SavedCheck, TextCheck, type TextFormat } from "./dataset_check";
import { LineSplitter, YIELD_BYTES, Yielder } from "./dataset_check_lines";
import { SeriesCheck, type SeriesFormat } from "./dataset_check_series";
import { getVersion, type ObjectVersion } from "./datasets";

type DatasetRow = typeof datasets.$inferSelect;

/** Bytes read per queue invocation: about a second of CPU at most, far under the Workers limit. */
export const CHECK_CHUNK_BYTES = 15 * 1024 * 1024;

/** The progress and version a `validating` row's `check_state` holds. */
export type CheckProgress = {
  /** The staged object's version being checked (from the HEAD /complete made). */
  etag: string;
  size: number;
  resumable: boolean;
  bytes_done: number;
  bytes_total: number;
  started_at: number;
  /** Queue invocations so far. */
  chunks: number;
};

/** Whether this dataset's format can be checked in resumable steps. */
export function resumable(d: Pick<DatasetRow, "modality" | "format">): boolean {
  return (d.modality === "text" || d.modality === "timeseries") && !d.format.endsWith(".gz");
}

/** Where a check's saved state lives: next to the staged upload, which no URL is ever signed for. */
export const checkStateKey = (objectKey: string) => `staging/${objectKey}.check`;

/** A check's position: how far it read, and everything it has learned from those bytes. */
export type CheckCursor = {
  offset: number;
  sha: Sha256;
  split: LineSplitter;
  check: LineCheck;
  /** The multipart upload of the checked bytes to the dataset's key, when the steps write it. */
  upload?: StepUpload;
};
export type StepUpload = { uploadId: string; parts: R2UploadedPart[] };

function makeCheck(d: Pick<DatasetRow, "modality" | "format" | "purpose">, saved?: SavedCheck): LineCheck {
  if (d.modality === "timeseries")
    return new SeriesCheck({ format: d.format as SeriesFormat, purpose: d.purpose }, saved);
  return new TextCheck({ format: d.format as TextFormat, purpose: d.purpose }, saved) as LineCheck;
}

async function newCursor(d: Pick<DatasetRow, "modality" | "format" | "purpose">, saved?: Saved): Promise<CheckCursor> {
  const check = makeCheck(d, saved?.check);
  if (check instanceof TextCheck && saved?.check.keys) await check.loadKeys(saved.check.keys);
  const split = new LineSplitter(
    (raw, n) => check.onLine(raw, n),
    (n) => check.onOverlong(n),
    saved?.split,
  );
  return {
    offset: saved?.offset ?? 0,
    sha: saved ? Sha256.restore(saved.sha) : new Sha256(),
    split,
    check,
    ...(saved?.upload ? { upload: saved.upload } : {}),
  };
}

type Saved = {
  upload?: StepUpload;
  offset: number;
  sha: Sha256State;
  split: { lines: number; carry: Uint8Array; overlong: boolean };
  check: SavedCheck;
};
type Header = {
  v: 1;
  etag: string;
  offset: number;
  sha: Sha256State;
  lines: number;
  overlong: boolean;
  carry: number;
  keys: number;
  check: Record<string, unknown>;
  upload?: StepUpload;
};

/** The cursor as bytes: a length-prefixed JSON header, then the partial line, then the duplicate keys. */
export async function encodeCursor(c: CheckCursor, etag: string): Promise<Uint8Array> {
  const split = c.split.save();
  const saved = await c.check.save();
  const keys = saved.keys ?? new Float64Array(0);
  const header: Header = {
    v: 1,
    etag,
    offset: c.offset,
    sha: c.sha.save(),
    lines: split.lines,
    overlong: split.overlong,
    carry: split.carry.length,
    keys: keys.length,
    check: saved.json,
    ...(c.upload ? { upload: c.upload } : {}),
  };
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + split.carry.length + keys.byteLength);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(split.carry, 4 + head.length);
  out.set(new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength), 4 + head.length + split.carry.length);
  return out;
}

/** The saved state in `bytes`, or null when it belongs to another version of the upload (or is unreadable). */
export function decodeCursor(bytes: Uint8Array, etag: string): Saved | null {
  try {
    const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n))) as Header;
    if (h.v !== 1 || h.etag !== etag) return null;
    const at = 4 + n;
    const carry = bytes.slice(at, at + h.carry);
    // slice copies into a fresh, aligned buffer, as Float64Array needs.
    const keys = new Float64Array(bytes.slice(at + h.carry, at + h.carry + h.keys * 8).buffer);
    if (carry.length !== h.carry || keys.length !== h.keys) return null;
    return {
      offset: h.offset,
      sha: h.sha,
      split: { lines: h.lines, carry, overlong: h.overlong },
      check: { json: h.check, keys },
      ...(h.upload ? { upload: h.upload } : {}),
    };
  } catch {
    return null;
  }
}

/**
 * The cursor the last step in this isolate saved, kept so the next step (usually delivered to the
 * same isolate) skips reading a few MB back from R2 and rebuilding its key set, garbage a big set
 * would otherwise make every step. One entry, taken out while a step uses it, so two concurrent
 * steps never share one.
 */
let live: { objectKey: string; etag: string; cursor: CheckCursor } | null = null;

/**
 * The stored cursor for version `v` of `d`'s upload, or a fresh one at byte 0.
 *
 * @param storedOffset the offset the row says was saved last: the kept cursor is used only when
 *   it is exactly that one (else another isolate went on, or a save was not recorded).
 */
export async function loadCursor(
  bucket: R2Bucket,
  d: Pick<DatasetRow, "modality" | "format" | "purpose" | "objectKey">,
  v: ObjectVersion,
  storedOffset?: number,
): Promise<CheckCursor> {
  const kept = live;
  live = null;
  if (kept && kept.objectKey === d.objectKey && kept.etag === v.etag && kept.cursor.offset === storedOffset) {
    return kept.cursor;
  }
  const obj = await bucket.get(checkStateKey(d.objectKey));
  const saved = obj ? decodeCursor(new Uint8Array(await obj.arrayBuffer()), v.etag) : null;
  return newCursor(d, saved ?? undefined);
}

export async function saveCursor(bucket: R2Bucket, objectKey: string, c: CheckCursor, v: ObjectVersion) {
  await bucket.put(checkStateKey(objectKey), await encodeCursor(c, v.etag));
  live = { objectKey, etag: v.etag, cursor: c };
}

/** Bytes per ranged read inside a step: smaller reads keep each storage call (and a local R2's work) short. */
export const READ_BYTES = 1024 * 1024;
/** R2's smallest multipart part (all but the last). */
const MIN_PART_BYTES = 5 * 1024 * 1024;
/**
 * Parts a step writes are this big when its size allows (a 15 MiB step writes three): each storage
 * write stays short, which matters where R2 is simulated in the same process (wrangler dev: a
 * 16 MiB part held other requests ~300 ms there, smaller ones far less).
 */
const STEP_PART_BYTES = 5 * 1024 * 1024;

/** The part size of uploads written in steps of `chunkBytes`: equal parts, whole steps. */
const partBytes = (chunkBytes: number) => (chunkBytes % STEP_PART_BYTES === 0 ? STEP_PART_BYTES : chunkBytes);

/**
 * Whether the steps write the checked bytes to the dataset's key as they go (one multipart part
 * per step, completed only once the check passes): each byte is then read from the staged object
 * once, and the verdict needs no second pass to copy 100s of MiB. Needs parts R2 accepts.
 */
export const uploadsInSteps = (size: number, chunkBytes: number) =>
  size > chunkBytes && partBytes(chunkBytes) >= MIN_PART_BYTES && size / partBytes(chunkBytes) <= 10_000;

/**
 * Reads up to `chunkBytes` of version `v` from the cursor and feeds them to the check, yielding to
 * the event loop every YIELD_BYTES; with `dest`, the same bytes go up as the next part of the
 * multipart upload to `dest` (see `uploadsInSteps`), overlapping with the check's CPU work.
 * Every read and part takes a turn first (lib/priority.ts): where R2 runs in-process (`wrangler
 * dev`), a chain of storage calls never leaves the event loop idle, so new connections were not
 * even accepted until the whole step's reads and parts were done (~400 ms).
 * Returns the check's result once the whole object has been read, else null (the cursor has moved;
 * save it and go on in another invocation).
 */
export async function checkStep(
  bucket: R2Bucket,
  v: ObjectVersion,
  cursor: CheckCursor,
  chunkBytes: number,
  dest?: { key: string; sha256: string },
): Promise<CheckResult<Record<string, unknown>> | null> {
  const length = Math.min(chunkBytes, v.size - cursor.offset);
  if (length > 0) {
    const data = new Uint8Array(length);
    for (let at = 0; at < length; at += READ_BYTES) {
      const n = Math.min(READ_BYTES, length - at);
      await turn();
      const got = new Uint8Array(
        await (await getVersion(bucket, v, { offset: cursor.offset + at, length: n })).arrayBuffer(),
      );
      if (got.length !== n) throw new Error(`R2 answered ${got.length} bytes for a ${n}-byte range`);
      data.set(got, at);
    }
    let uploaded: Promise<void> | null = null;
    if (dest) {
      cursor.upload ??= {
        uploadId: (await bucket.createMultipartUpload(dest.key, { customMetadata: { sha256: dest.sha256 } })).uploadId,
        parts: [],
      };
      const upload = cursor.upload;
      const mpu = bucket.resumeMultipartUpload(dest.key, upload.uploadId);
      const size = partBytes(chunkBytes);
      const first = cursor.offset / size + 1;
      // One part after the other, while the check works on the same bytes.
      uploaded = (async () => {
        for (let at = 0, n = first; at < data.length; at += size, n++) {
          await turn();
          upload.parts[n - 1] = await mpu.uploadPart(n, data.subarray(at, at + size));
        }
      })();
    }
    const yielder = new Yielder();
    for (let at = 0; at < data.length; at += YIELD_BYTES) {
      const piece = data.subarray(at, at + YIELD_BYTES);
      cursor.sha.update(piece);
      cursor.check.addDecompressed(piece.length);
      cursor.split.push(piece);
      await yielder.tick(piece.length);
    }
    await uploaded;
    cursor.offset += length;
  }
  if (cursor.offset < v.size) return null;
  const lines = cursor.split.end();
  return cursor.check.finish(cursor.sha.hex(), v.size, lines) as CheckResult<Record<string, unknown>>;
}
