// A few labeled records of a probe set, spread evenly over the file, in the form /v1/embeddings takes:
// what the dashboard embeds to draw an evaluation's 2-D map. Reads with the probes' readers and the
// probes' size limits, so it costs no more than fitting a probe on the same set. Knows nothing of Hono.
import type { Db } from "../db";
import { conflict, unprocessable } from "../lib/errors";
import { ArchiveError } from "./archive/bytes";
import { type RecordSource, RecordsError, readRecords, readTextRecords } from "./dataset_records";
import { findDataset } from "./datasets";
import { type ModalItem, tooLarge } from "./encoder/items";
import { MAX_PROBE_EXAMPLES } from "./probe/fit";
import { MAX_PROBE_SERIES_VALUES, MAX_PROBE_SET_BYTES } from "./probes";

export const MAX_SAMPLE = 1000;

/** A text, a `data:image/…;base64,` URL, or a series (`number[]` for one channel, else channels × time). */
export type SampleInput = string | number[] | number[][];
export type Sample = { index: number; input: SampleInput; label: string | null };

/** At most `max` indexes spread evenly over 0..n−1 (all of them when n ≤ max). */
export function evenIndexes(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: max }, (_, i) => Math.floor((i * n) / max));
}

function dataUrl(bytes: Uint8Array): string {
  // PNG and JPEG are the only kinds a checked image set holds.
  const mime = bytes[0] === 0xff && bytes[1] === 0xd8 ? "image/jpeg" : "image/png";
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:${mime};base64,${btoa(bin)}`;
}

function asInput(item: ModalItem): SampleInput {
  if (item.kind === "image") return dataUrl(item.bytes);
  return item.values.length === 1 ? (item.values[0] as number[]) : item.values;
}

/**
 * Up to `n` labeled records of a ready probe set, spread evenly over its first MAX_PROBE_EXAMPLES.
 *
 * Args:
 *   db, bucket: where the dataset row and its bytes are.
 *   tenantId, id: the dataset.
 *   n: how many records at most (1..MAX_SAMPLE, checked by the route).
 *
 * Returns: the records read and the sample, each with its index in file order. A set that is not a
 * ready probe set is a 409/422 naming why; one over the probes' size limits a 413.
 */
export async function sampleDataset(
  ctx: { db: Db; bucket: RecordSource; tenantId: string },
  id: string,
  n: number,
): Promise<{ dataset: string; read: number; data: Sample[] }> {
  const d = await findDataset(ctx.db, ctx.tenantId, id);
  if (d.status !== "ready") {
    throw conflict(`Dataset ${d.id} is ${d.status}; records can be read once it is ready (GET /v1/datasets/${d.id}).`);
  }
  if (d.purpose !== "probe") {
    throw unprocessable(
      `Dataset ${d.id} is a ${d.purpose} set; samples are read from labeled \`purpose: "probe"\` sets.`,
      [{ path: "id", message: "must be a probe dataset" }],
    );
  }
  if (d.modality === "text" && !d.format.startsWith("jsonl")) {
    throw unprocessable(
      `Dataset ${d.id} is a ${d.format} set; text samples are read from jsonl {"text", "label"} sets.`,
      [{ path: "id", message: "must be a jsonl probe dataset" }],
    );
  }
  const stats = (d.stats ?? {}) as { decompressed_bytes?: number; points?: number };
  const expanded = Math.max(d.bytes, Number(stats.decompressed_bytes ?? 0));
  if (d.modality === "image" && expanded > MAX_PROBE_SET_BYTES) {
    throw tooLarge(
      `Dataset ${d.id} is ${expanded} bytes decompressed; an image set is read whole inside the Worker, at most ${MAX_PROBE_SET_BYTES}.`,
      "id",
    );
  }
  if (d.modality === "timeseries" && Number(stats.points ?? 0) > MAX_PROBE_SERIES_VALUES) {
    throw tooLarge(`Dataset ${d.id} has ${stats.points} values; at most ${MAX_PROBE_SERIES_VALUES} are read.`, "id");
  }
  let records: { input: SampleInput; label: string | null }[];
  try {
    if (d.modality === "text") {
      const rows = await readTextRecords(ctx.bucket, d, MAX_PROBE_EXAMPLES);
      records = rows.map((r) => ({ input: r.text, label: r.label }));
    } else {
      const rows = await readRecords(ctx.bucket, d, MAX_PROBE_EXAMPLES);
      records = rows.map((r) => ({ input: asInput(r.item), label: r.label ?? null }));
    }
  } catch (e) {
    // The set passed its check; a failure now means its stored object is not the checked one.
    if (!(e instanceof RecordsError || e instanceof ArchiveError)) throw e;
    throw conflict(`${e.message}.`, [{ path: "id", message: e.message }]);
  }
  const data = evenIndexes(records.length, n).map((i) => ({ index: i, ...(records[i] as (typeof records)[number]) }));
  return { dataset: d.id, read: records.length, data };
}
