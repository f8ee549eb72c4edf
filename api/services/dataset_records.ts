// The records of an image or time-series probe set, for probes and evaluations: labeled ModalItems
// read with the same readers the dataset check uses (one zip directory read + one stream, or one
// stream), at most `max` of them. IDX images become PNG files, so every image item is an encoded
// file like the ones /v1/embeddings takes (and the embedding cache keys on).
import { zlibSync } from "fflate";
import type { datasets } from "../../db/schema";
import { crc32 } from "../lib/crc32";
import { ByteReader, collect } from "./archive/bytes";
import { readIdxBytes } from "./archive/idx";
import type { ArchiveMember } from "./archive/member";
import { tarMembers } from "./archive/tar";
import { readZipDirectory, zipMembers } from "./archive/zip";
import { forEachLine, maybeGunzip } from "./dataset_check";
import { classOf, IMAGE_LIMITS, memberKind } from "./dataset_check_image";
import { type SeriesFormat, seriesLineParser } from "./dataset_check_series";
import type { ModalItem } from "./encoder/items";

export type DatasetRecord = { item: ModalItem; label?: string; name?: string };
type Dataset = Pick<
  typeof datasets.$inferSelect,
  "id" | "modality" | "format" | "objectKey" | "bytes" | "sha256" | "stats"
>;

/** What the reader needs of R2: whole objects and byte ranges. */
export type RecordSource = Pick<R2Bucket, "get">;

/** A set changed or corrupted behind the check's back; the probe fails with a clear message. */
export class RecordsError extends Error {}

const gone = (d: Dataset) => `the bytes of dataset ${d.id} are gone; upload it again`;
const differ = (d: Dataset, what: string) =>
  `the stored bytes of dataset ${d.id} are not the ones its check read (${what}); upload it again`;

/** `source`, failing with a RecordsError once it yields more than `max` bytes: stale stats are never trusted. */
function capped(source: AsyncIterable<Uint8Array>, max: number, tooLong: () => string): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      let n = 0;
      for await (const c of source) {
        n += c.byteLength;
        if (n > max) throw new RecordsError(tooLong());
        yield c;
      }
    },
  };
}

/** The decompressed size the dataset check measured (the file size when it recorded none). */
function checkedSize(d: Dataset): number {
  const n = Number((d.stats as { decompressed_bytes?: unknown } | null)?.decompressed_bytes);
  return Number.isFinite(n) && n > 0 ? n : d.bytes;
}

/**
 * The dataset's object as checked: its size and recorded SHA-256 must match the row, and the
 * stream ends in a RecordsError past the checked size, so a changed object is a clean error.
 */
async function open(bucket: RecordSource, d: Dataset): Promise<AsyncIterable<Uint8Array>> {
  const obj = await bucket.get(d.objectKey);
  if (!obj) throw new RecordsError(gone(d));
  const sha = obj.customMetadata?.sha256;
  if (obj.size !== d.bytes || (sha !== undefined && sha !== d.sha256)) {
    await obj.body.cancel();
    throw new RecordsError(differ(d, `${obj.size} bytes, ${d.bytes} were checked`));
  }
  return capped(obj.body, d.bytes, () => differ(d, `over ${d.bytes} bytes`));
}

/** The dataset's records as bytes, gunzipped when its format says so, at most the decompressed size its check measured. */
async function openDecompressed(bucket: RecordSource, d: Dataset): Promise<AsyncIterable<Uint8Array>> {
  const max = checkedSize(d);
  return capped(maybeGunzip(await open(bucket, d), d.format), max, () =>
    differ(d, `more than the ${max} bytes decompressed its check counted`),
  );
}

/**
 * The labeled `{text, label}` lines of a ready jsonl text probe set, at most `max`, read line by
 * line within the checked sizes.
 *
 * Args:
 *   bucket: the R2 bucket holding the dataset object.
 *   d: the dataset row (format `jsonl` or `jsonl.gz`, stats from its check).
 *   max: stop after this many records.
 *
 * Returns: the records' text and label (as a string). A line that no longer parses is a RecordsError.
 */
export async function readTextRecords(
  bucket: RecordSource,
  d: Dataset,
  max: number,
): Promise<{ text: string; label: string }[]> {
  const out: { text: string; label: string }[] = [];
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  let bad: string | null = null;
  await forEachLine(
    await openDecompressed(bucket, d),
    (raw, n) => {
      if (out.length >= max || bad) return;
      let r: { text?: unknown; label?: unknown };
      try {
        const line = utf8.decode(raw);
        if (line.trim() === "") return;
        r = JSON.parse(line) as typeof r;
      } catch {
        bad = `line ${n} is not a JSON record`;
        return;
      }
      // The dataset check required text and a label on every record; skip defensively.
      if (
        typeof r?.text === "string" &&
        r.text !== "" &&
        (typeof r.label === "string" || typeof r.label === "number")
      ) {
        out.push({ text: r.text, label: String(r.label) });
      }
    },
    (n) => {
      bad ??= `line ${n} is too long`;
    },
  );
  if (bad) throw new RecordsError(differ(d, bad));
  return out;
}

/**
 * The labeled records of a ready image or time-series dataset, in file order, at most `max`.
 *
 * Args:
 *   bucket: the R2 bucket holding the dataset object (range reads for zip directories).
 *   d: the dataset row (modality, format, object key).
 *   max: stop after this many records.
 *
 * Returns: image items hold encoded PNG/JPEG bytes (IDX images are written as PNG); series items
 * hold `values[channel][t]`. Labels: the class folder, the IDX label, or the record's label.
 */
export async function readRecords(bucket: RecordSource, d: Dataset, max: number): Promise<DatasetRecord[]> {
  if (d.modality === "timeseries") return readSeries(bucket, d, max);
  if (d.modality !== "image") throw new RecordsError(`dataset ${d.id} holds ${d.modality}, not images or series`);
  const out: DatasetRecord[] = [];
  if (d.format === "idx" || d.format === "idx.gz") {
    const bytes = await collect(await openDecompressed(bucket, d), Number.MAX_SAFE_INTEGER, () => "");
    return idxRecords(bytes, null, max);
  }
  let members: AsyncIterable<ArchiveMember>;
  let reader: ByteReader;
  if (d.format === "zip") {
    const range = async (offset: number, length: number) => {
      const obj = await bucket.get(d.objectKey, { range: { offset, length } });
      if (!obj) throw new RecordsError(gone(d));
      return new Uint8Array(await obj.arrayBuffer());
    };
    const entries = await readZipDirectory(d.bytes, range);
    reader = ByteReader.from(await open(bucket, d));
    members = zipMembers(entries, reader);
  } else {
    reader = ByteReader.from(await openDecompressed(bucket, d));
    members = tarMembers(reader);
  }
  let idxImages: Uint8Array | null = null;
  let idxLabels: Uint8Array | null = null;
  const whole = (m: ArchiveMember) =>
    collect(maybeGunzip(m.body(), m.name.toLowerCase()), IMAGE_LIMITS.maxDecompressedBytes, () => "");
  try {
    for await (const m of members) {
      const kind = memberKind(m.name);
      if (kind === "idx3") idxImages = await whole(m);
      else if (kind === "idx1") idxLabels = await whole(m);
      else if (kind === "image" && out.length < max) {
        const bytes = await collect(m.body(), IMAGE_LIMITS.maxImageBytes, (n) => `${m.name} is over ${n} bytes`);
        out.push({ item: { kind: "image", bytes }, label: classOf(m.name) ?? undefined, name: m.name });
      }
      if (out.length >= max && idxImages === null) break;
    }
  } finally {
    await reader.close();
  }
  if (idxImages) return idxRecords(idxImages, idxLabels, max);
  return out;
}

function idxRecords(images: Uint8Array, labels: Uint8Array | null, max: number): DatasetRecord[] {
  const img = readIdxBytes(images, "images");
  const lab = labels ? readIdxBytes(labels, "labels") : null;
  const rows = img.dims[1] as number;
  const cols = img.dims[2] as number;
  const n = Math.min(img.dims[0] as number, max);
  const out: DatasetRecord[] = [];
  for (let i = 0; i < n; i++) {
    const pixels = img.data.subarray(i * rows * cols, (i + 1) * rows * cols);
    const label = lab ? String(lab.data[i]) : undefined;
    out.push({ item: { kind: "image", bytes: encodeGreyPng(pixels, cols, rows) }, label, name: `#${i}` });
  }
  return out;
}

async function readSeries(bucket: RecordSource, d: Dataset, max: number): Promise<DatasetRecord[]> {
  const parse = seriesLineParser(d.format as SeriesFormat);
  const out: DatasetRecord[] = [];
  let bad: string | null = null;
  const body = await openDecompressed(bucket, d);
  await forEachLine(
    body,
    (raw, n) => {
      if (out.length >= max || bad) return;
      const r = parse(raw, n);
      if (typeof r === "string") return;
      if ("message" in r) bad ??= `line ${n}: ${r.message}`;
      else out.push({ item: { kind: "series", values: r.values }, label: r.label, name: `line ${n}` });
    },
    (n) => {
      bad ??= `line ${n} is too long`;
    },
  );
  if (bad) throw new RecordsError(differ(d, bad));
  return out;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * An 8-bit greyscale PNG of `pixels` (row-major, width × height), filter 0 on every row: lossless,
 * and deterministic, so the same IDX image always hashes to the same embedding-cache key.
 */
export function encodeGreyPng(pixels: Uint8Array, width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", zlibSync(raw)),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
