// Zip reading in two passes that suit R2: the central directory from one or two range reads at the
// end of the object, then every member from ONE sequential stream of the object (sorted by local
// header offset), so a 60,000-member archive costs three R2 operations, not 60,000. Stored and
// deflated members; zip64 sizes and offsets. A member may never inflate past the size the central
// directory declares (a lying member is how zip bombs get past size checks).
import { Inflate } from "fflate";
import { crc32 } from "../../lib/crc32";
import { ArchiveError, type ByteReader } from "./bytes";
import type { ArchiveMember } from "./member";

export type ZipEntry = {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localOffset: number;
};

/**
 * Central directories larger than this are refused before they are read: parsed entries cost ~140
 * bytes of heap each (a 64 MiB, 1.4 M-entry directory became ~193 MB), so 8 MiB and 200,000 entries
 * keep the parse near 30 MB.
 */
export const MAX_CENTRAL_DIRECTORY_BYTES = 8 * 1024 * 1024;
/** Members a zip may list (checked against the end-of-central-directory count before reading). */
export const MAX_ZIP_ENTRIES = 200_000;
const EOCD_MIN = 22;
const MAX_COMMENT = 0xffff;
const ZIP64_LOCATOR = 20;
const ZIP64_EOCD = 56;
// Compressed bytes per push into the inflater: deflate expands at most ~1032x, so one push can
// produce at most ~16 MiB before the size check runs.
const INFLATE_SLICE = 16 * 1024;

export type RangeRead = (offset: number, length: number) => Promise<Uint8Array>;

const u16 = (b: Uint8Array, at: number) => (b[at] as number) | ((b[at + 1] as number) << 8);
const u32 = (b: Uint8Array, at: number) => (u16(b, at) | (u16(b, at + 2) << 16)) >>> 0;
const u64 = (b: Uint8Array, at: number) => u32(b, at) + u32(b, at + 4) * 2 ** 32;

function notZip(detail: string): ArchiveError {
  return new ArchiveError(`not a readable zip archive: ${detail}; create it with \`zip -r\` or your OS's "compress"`);
}

/** The central directory of a zip object of `size` bytes, read through `readRange`. */
export async function readZipDirectory(size: number, readRange: RangeRead): Promise<ZipEntry[]> {
  if (size < EOCD_MIN) throw notZip(`${size} bytes is too short to be a zip`);
  const tailLength = Math.min(size, EOCD_MIN + MAX_COMMENT + ZIP64_LOCATOR + ZIP64_EOCD);
  const tailStart = size - tailLength;
  const tail = await readRange(tailStart, tailLength);
  let eocd = -1;
  for (let i = tail.length - EOCD_MIN; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50 && i + EOCD_MIN + u16(tail, i + 20) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw notZip("no end-of-central-directory record at the end of the file");
  if (u16(tail, eocd + 4) !== 0 || u16(tail, eocd + 6) !== 0)
    throw notZip("multi-volume (split) zips are not supported");
  let entries = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - ZIP64_LOCATOR;
    if (loc < 0 || u32(tail, loc) !== 0x07064b50) throw notZip("zip64 locator missing");
    const at = u64(tail, loc + 8);
    const rec =
      at >= tailStart ? tail.subarray(at - tailStart, at - tailStart + ZIP64_EOCD) : await readRange(at, ZIP64_EOCD);
    if (rec.length < ZIP64_EOCD || u32(rec, 0) !== 0x06064b50)
      throw notZip("zip64 end-of-central-directory record missing");
    entries = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (cdOffset + cdSize > size)
    throw notZip("the central directory points past the end of the file (truncated upload?)");
  if (entries > MAX_ZIP_ENTRIES) {
    throw new ArchiveError(
      `the zip lists ${entries} entries, over the ${MAX_ZIP_ENTRIES} limit per archive; split the set into several archives (datasets)`,
    );
  }
  if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES) {
    throw new ArchiveError(
      `the zip's central directory is ${cdSize} bytes, over the ${MAX_CENTRAL_DIRECTORY_BYTES / 2 ** 20} MiB limit; split the set into several archives (datasets)`,
    );
  }
  const cd =
    cdOffset >= tailStart
      ? tail.subarray(cdOffset - tailStart, cdOffset - tailStart + cdSize)
      : await readRange(cdOffset, cdSize);
  return parseCentralDirectory(cd, entries);
}

function parseCentralDirectory(cd: Uint8Array, expected: number): ZipEntry[] {
  const out: ZipEntry[] = [];
  const utf8 = new TextDecoder("utf-8");
  let p = 0;
  while (p + 46 <= cd.length && u32(cd, p) === 0x02014b50) {
    const nameLen = u16(cd, p + 28);
    const extraLen = u16(cd, p + 30);
    const commentLen = u16(cd, p + 32);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) break;
    const e: ZipEntry = {
      name: utf8.decode(cd.subarray(p + 46, p + 46 + nameLen)),
      flags: u16(cd, p + 8),
      method: u16(cd, p + 10),
      crc32: u32(cd, p + 16),
      compressedSize: u32(cd, p + 20),
      size: u32(cd, p + 24),
      localOffset: u32(cd, p + 42),
    };
    // Zip64 extra field: the 64-bit values of exactly the fields saturated above, in this order.
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let x = 0; x + 4 <= extra.length; x += 4 + u16(extra, x + 2)) {
      if (u16(extra, x) !== 0x0001) continue;
      let at = x + 4;
      if (e.size === 0xffffffff) {
        e.size = u64(extra, at);
        at += 8;
      }
      if (e.compressedSize === 0xffffffff) {
        e.compressedSize = u64(extra, at);
        at += 8;
      }
      if (e.localOffset === 0xffffffff) e.localOffset = u64(extra, at);
    }
    out.push(e);
    p += 46 + nameLen + extraLen + commentLen;
  }
  if (out.length !== expected) {
    throw notZip(`the central directory lists ${out.length} readable entries, its header says ${expected}`);
  }
  return out;
}

/**
 * Every file entry of `entries` (directories skipped), read from `reader`, a stream of the whole
 * object from byte 0. Members come in file order; a member's body is only valid until the next one
 * is requested, and is skipped unread when the consumer does not want it.
 */
export async function* zipMembers(entries: ZipEntry[], reader: ByteReader): AsyncGenerator<ArchiveMember> {
  const files = entries.filter((e) => !e.name.endsWith("/")).sort((a, b) => a.localOffset - b.localOffset);
  for (const e of files) {
    if (e.localOffset < reader.position) {
      throw new ArchiveError(`member \`${e.name}\` overlaps the member before it; the zip is corrupt or crafted`);
    }
    await reader.skip(e.localOffset - reader.position);
    const header = await reader.read(30);
    if (header.length < 30 || u32(header, 0) !== 0x04034b50) {
      throw new ArchiveError(`member \`${e.name}\`: no local file header at byte ${e.localOffset}; the zip is corrupt`);
    }
    await reader.skip(u16(header, 26) + u16(header, 28));
    const end = reader.position + e.compressedSize;
    yield { name: e.name, size: e.size, body: () => memberBody(e, reader) };
    if (reader.position < end) await reader.skip(end - reader.position);
  }
}

async function* memberBody(e: ZipEntry, reader: ByteReader): AsyncGenerator<Uint8Array> {
  if (e.flags & 1) throw new ArchiveError("encrypted; upload the archive without a password");
  if (e.method !== 0 && e.method !== 8) {
    throw new ArchiveError(`compressed with method ${e.method}; only stored (0) and deflate (8) are supported`);
  }
  let crc = 0;
  let total = 0;
  const tooBig = () =>
    new ArchiveError(`inflates past the ${e.size} bytes the zip's directory declares (corrupt, or a zip bomb)`);
  let got = 0;
  if (e.method === 0) {
    if (e.compressedSize !== e.size) throw new ArchiveError("stored member whose sizes disagree; the zip is corrupt");
    for await (const c of reader.take(e.compressedSize)) {
      got += c.byteLength;
      total += c.byteLength;
      crc = crc32(c, crc);
      yield c;
    }
  } else {
    const out: Uint8Array[] = [];
    let failed: ArchiveError | null = null;
    const inflater = new Inflate((chunk) => {
      total += chunk.byteLength;
      if (total > e.size) failed ??= tooBig();
      else out.push(chunk);
    });
    const push = (c: Uint8Array, final: boolean) => {
      try {
        inflater.push(c, final);
      } catch (err) {
        failed ??= new ArchiveError(`deflate data is corrupt (${(err as Error).message})`);
      }
    };
    for await (const c of reader.take(e.compressedSize)) {
      got += c.byteLength;
      for (let i = 0; i < c.byteLength; i += INFLATE_SLICE) {
        push(c.subarray(i, i + INFLATE_SLICE), false);
        if (failed) throw failed;
        for (const piece of out.splice(0)) {
          crc = crc32(piece, crc);
          yield piece;
        }
      }
    }
    if (got === e.compressedSize) push(new Uint8Array(0), true);
    if (failed) throw failed;
    for (const piece of out.splice(0)) {
      crc = crc32(piece, crc);
      yield piece;
    }
  }
  if (got < e.compressedSize) {
    throw new ArchiveError(`truncated: the file ends inside this member (${got} of ${e.compressedSize} bytes)`);
  }
  if (total !== e.size) throw new ArchiveError(`holds ${total} bytes, the zip's directory declares ${e.size}`);
  if (crc !== e.crc32) throw new ArchiveError("CRC-32 mismatch: the member's bytes are corrupt");
}
