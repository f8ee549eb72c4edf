// IDX (the MNIST format): a 4-byte magic `00 00 <type> <ndims>`, big-endian u32 dims, then the data.
// Images are `idx3` (type 0x08 unsigned bytes, dims n × rows × cols), labels `idx1` (0x08, dims n).
// Read as a stream: only the header and the label histogram are kept.
import { ArchiveError, ByteReader } from "./bytes";

export type IdxSummary = {
  kind: "images" | "labels";
  count: number;
  rows?: number;
  cols?: number;
  /** labels only: how many times each label byte occurs, as class names ("0"…"9"). */
  labels?: Record<string, number>;
};

/** Rows/cols beyond this are not images a probe or the trainer could hold. */
const MAX_SIDE = 4096;

/**
 * Checks one IDX file and summarizes it.
 *
 * Args:
 *   chunks: the file's bytes (already gunzipped).
 *   expect: `images` for an idx3 file, `labels` for an idx1 file.
 *   maxBytes: refuse a header that declares more data than this (a bomb, or not an IDX file).
 *
 * Throws ArchiveError naming what is wrong: magic, data type, dims, truncation, trailing bytes.
 */
export async function readIdx(
  chunks: AsyncIterable<Uint8Array>,
  expect: "images" | "labels",
  maxBytes: number,
): Promise<IdxSummary> {
  const reader = ByteReader.from(chunks);
  const magic = await reader.read(4);
  const ndims = expect === "images" ? 3 : 1;
  if (magic.length < 4 || magic[0] !== 0 || magic[1] !== 0) {
    throw new ArchiveError("not an IDX file: it must start with 00 00, the data type byte and the number of dims");
  }
  if (magic[2] !== 0x08) {
    throw new ArchiveError(
      `IDX data type 0x${(magic[2] as number).toString(16).padStart(2, "0")} is not supported; ${expect} must be unsigned bytes (0x08)`,
    );
  }
  if (magic[3] !== ndims) {
    throw new ArchiveError(
      `an IDX ${expect} file has ${ndims} dim${ndims > 1 ? "s" : ""} (${expect === "images" ? "n, rows, cols: idx3" : "n: idx1"}); this one has ${magic[3]}`,
    );
  }
  const head = await reader.read(4 * ndims);
  if (head.length < 4 * ndims) throw new ArchiveError("truncated: the file ends inside the IDX header");
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 * i, false));
  const [count, rows = 1, cols = 1] = dims as [number, number?, number?];
  if (expect === "images" && (rows < 1 || cols < 1 || rows > MAX_SIDE || cols > MAX_SIDE)) {
    throw new ArchiveError(`IDX images of ${rows}×${cols} pixels: each side must be 1-${MAX_SIDE}`);
  }
  const per = rows * cols;
  const payload = count * per;
  if (payload > maxBytes) {
    throw new ArchiveError(`the IDX header declares ${payload} bytes of data, over the ${maxBytes} this check reads`);
  }
  const hist = new Uint32Array(256);
  let got = 0;
  for await (const c of reader.take(payload)) {
    if (expect === "labels") {
      for (let i = 0; i < c.length; i++) {
        const v = c[i] as number;
        hist[v] = (hist[v] as number) + 1;
      }
    }
    got += c.byteLength;
  }
  if (got < payload) {
    const what = expect === "images" ? `${count} images of ${rows}×${cols}` : `${count} labels`;
    throw new ArchiveError(
      `truncated: the header declares ${what} (${payload} bytes of data) but the file holds ${got}` +
        (expect === "images" ? ` (${Math.floor(got / per)} complete images)` : ""),
    );
  }
  if (!(await reader.atEnd())) {
    throw new ArchiveError(`the file has bytes after the ${payload} bytes of data its header declares; it is corrupt`);
  }
  if (expect === "images") return { kind: "images", count, rows, cols };
  const labels: Record<string, number> = {};
  hist.forEach((n, v) => {
    if (n > 0) labels[String(v)] = n;
  });
  return { kind: "labels", count, labels };
}

/** The dims and data of an IDX file already in memory (checked at dataset completion). */
export function readIdxBytes(bytes: Uint8Array, expect: "images" | "labels"): { dims: number[]; data: Uint8Array } {
  const ndims = expect === "images" ? 3 : 1;
  if (bytes.length < 4 + 4 * ndims || bytes[2] !== 0x08 || bytes[3] !== ndims) {
    throw new ArchiveError(`not an IDX ${expect} file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const start = 4 + 4 * ndims;
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length < start + size) throw new ArchiveError(`truncated IDX ${expect} file`);
  return { dims, data: bytes.subarray(start, start + size) };
}
