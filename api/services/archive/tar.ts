// Tar reading from one stream (gunzipped first for .tar.gz): 512-byte headers, ustar prefixes,
// GNU long names and pax `path`/`size` records, so archives from GNU tar, bsdtar and Python's
// tarfile all read. Only regular files become members; links, directories and devices are skipped.
import { ArchiveError, type ByteReader, collect } from "./bytes";
import type { ArchiveMember } from "./member";

const BLOCK = 512;
/** Long-name and pax records are metadata; anything bigger is not a real tar. */
const MAX_META_BYTES = 1024 * 1024;

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

function cString(b: Uint8Array, at: number, len: number, dec = utf8): string {
  const field = b.subarray(at, at + len);
  const nul = field.indexOf(0);
  return dec.decode(nul >= 0 ? field.subarray(0, nul) : field);
}

/** Octal (space/NUL padded), or GNU base-256 when the high bit of the first byte is set. */
function numeric(b: Uint8Array, at: number, len: number): number {
  if ((b[at] as number) & 0x80) {
    let v = (b[at] as number) & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (b[at + i] as number);
    return v;
  }
  const s = latin1
    .decode(b.subarray(at, at + len))
    .replace(/[\0 ]+$/, "")
    .trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) return Number.NaN;
  return Number.parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  const stored = numeric(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return stored === sum;
}

/** pax extended header records: `<length> <key>=<value>\n`. */
function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < data.length) {
    const space = data.indexOf(0x20, p);
    if (space < 0) break;
    const len = Number.parseInt(latin1.decode(data.subarray(p, space)), 10);
    if (!(len > 0)) break;
    const rec = utf8.decode(data.subarray(space + 1, p + len - 1));
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    p += len;
  }
  return out;
}

/** Regular files of a tar stream, in order. Ends at the two zero blocks or the end of the stream. */
export async function* tarMembers(reader: ByteReader): AsyncGenerator<ArchiveMember> {
  let longName: string | null = null;
  let pax: Record<string, string> = {};
  for (;;) {
    const at = reader.position;
    const h = await reader.read(BLOCK);
    if (h.length === 0) return;
    if (h.length < BLOCK) throw new ArchiveError(`truncated: the file ends inside the tar header at byte ${at}`);
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h)) {
      throw new ArchiveError(
        at === 0
          ? "not a tar archive (the first header's checksum does not match); create it with `tar -cf`"
          : `the tar header at byte ${at} is corrupt (checksum mismatch)`,
      );
    }
    const type = String.fromCharCode(h[156] as number);
    let size = numeric(h, 124, 12);
    if (pax.size !== undefined) size = Number(pax.size);
    if (!Number.isSafeInteger(size) || size < 0)
      throw new ArchiveError(`the tar header at byte ${at} has no valid size`);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L" || type === "x" || type === "g") {
      if (size > MAX_META_BYTES)
        throw new ArchiveError(`the tar metadata record at byte ${at} is ${size} bytes; corrupt`);
      const data = await collect(reader.take(size), MAX_META_BYTES, () => "");
      await reader.skip(padded - size);
      if (type === "L") longName = cString(data, 0, data.length);
      else if (type === "x") pax = parsePax(data);
      continue;
    }
    let name = longName ?? pax.path ?? cString(h, 0, 100);
    if (longName === null && pax.path === undefined && cString(h, 257, 5, latin1) === "ustar") {
      const prefix = cString(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    longName = null;
    pax = {};
    const end = reader.position + padded;
    if (type === "0" || type === "\0" || type === "7") {
      yield { name: name.replace(/^\.\//, ""), size, body: () => fixedBody(reader, size) };
    }
    if (reader.position < end) {
      const want = end - reader.position;
      if ((await reader.skip(want)) < want && reader.position < end - (padded - size)) {
        throw new ArchiveError(`truncated: the file ends inside member \`${name}\``);
      }
    }
  }
}

async function* fixedBody(reader: ByteReader, size: number): AsyncGenerator<Uint8Array> {
  let got = 0;
  for await (const c of reader.take(size)) {
    got += c.byteLength;
    yield c;
  }
  if (got < size) throw new ArchiveError(`truncated: the file ends inside this member (${got} of ${size} bytes)`);
}
