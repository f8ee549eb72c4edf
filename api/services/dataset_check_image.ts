// Checks an image dataset (decision 0005): zip, tar, tar.gz of PNG/JPEG members (class = first
// folder), or IDX. Every image is decoded with the Worker's decoder, the one /v1/embeddings uses,
// so a set that passes here is a set the edge can embed. R2 is read with at most three operations
// (zip: the directory's range reads, then one stream); memory holds one member at a time.
import { ArchiveError, ByteReader, collect } from "./archive/bytes";
import { type IdxSummary, readIdx } from "./archive/idx";
import type { ArchiveMember } from "./archive/member";
import { tarMembers } from "./archive/tar";
import { type RangeRead, readZipDirectory, zipMembers } from "./archive/zip";
import {
  type CheckResult,
  counted,
  hashedSource,
  Issues,
  MAX_REPORTED,
  maybeGunzip,
  readFailure,
} from "./dataset_check";
import { Yielder } from "./dataset_check_lines";
import { decodeImage, ImageDecodeError, MAX_IMAGE_PIXELS } from "./image/decode";

export const IMAGE_FORMATS = ["zip", "tar", "tar.gz", "idx", "idx.gz"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
const IMAGE_NAME = /\.(png|jpe?g)$/i;

export type ImageLimits = {
  /** Encoded bytes per image member (the /v1/embeddings cap). */
  maxImageBytes: number;
  /** Decoded pixels per image (the /v1/embeddings cap). */
  maxPixels: number;
  /** Bytes the whole set may expand to: archive members plus any gzip layer. */
  maxDecompressedBytes: number;
};
export const IMAGE_LIMITS: ImageLimits = {
  maxImageBytes: 16 * 1024 * 1024,
  maxPixels: MAX_IMAGE_PIXELS,
  maxDecompressedBytes: 4 * 1024 ** 3,
};

/** The set as a whole is too big to check: fatal, unlike one bad member. */
class SetTooLarge extends ArchiveError {}
/** Distinct class names a probe set may have. */
export const MAX_CLASSES = 10_000;

type Range = { min: number; max: number };
export type ImageStats = {
  records: number;
  bytes: number;
  decompressed_bytes: number;
  /** Archive members seen (files only), images or not. */
  members: number;
  /** Hidden files, `__MACOSX/` and members that are neither images nor IDX. */
  ignored: number;
  corrupt: number;
  width: Range | null;
  height: Range | null;
  channels: Record<string, number>;
  formats: Record<string, number>;
  /** Images per class (first folder, or IDX label); probe sets always, pretrain sets when every image has one. */
  labels?: Record<string, number>;
  /** Images with no class folder (pretrain sets may have them). */
  unlabeled?: number;
};

export type ImageSource = {
  size: number;
  /** The whole object as one stream. */
  stream: () => Promise<ReadableStream<Uint8Array>>;
  /** A byte range of the object (zip directories). */
  range: RangeRead;
};

const bump = (m: Record<string, number> | Map<string, number>, k: string, by = 1) => {
  if (m instanceof Map) m.set(k, (m.get(k) ?? 0) + by);
  else m[k] = (m[k] ?? 0) + by;
};
const widen = (r: Range | null, v: number): Range =>
  r ? { min: Math.min(r.min, v), max: Math.max(r.max, v) } : { min: v, max: v };
const sorted = (m: Map<string, number>) => Object.fromEntries([...m.entries()].sort(([a], [b]) => a.localeCompare(b)));

/** The class of an archive member: its first folder (`cat/001.png` → `cat`), or null at the root. */
export const classOf = (name: string): string | null => {
  const slash = name.indexOf("/");
  return slash > 0 ? name.slice(0, slash) : null;
};

/** Hidden files (any path part starting with "."), macOS resource forks, and non-image files. */
export function memberKind(name: string): "image" | "idx3" | "idx1" | "ignored" {
  const parts = name.split("/");
  if (parts[0] === "__MACOSX" || parts.some((p) => p.startsWith("."))) return "ignored";
  const base = (parts[parts.length - 1] as string).toLowerCase();
  if (IMAGE_NAME.test(base)) return "image";
  if (base.includes("idx3")) return "idx3";
  if (base.includes("idx1")) return "idx1";
  return "ignored";
}

export async function checkImageDataset(
  source: ImageSource,
  opts: { format: ImageFormat; purpose: "pretrain" | "probe"; limits?: Partial<ImageLimits> },
): Promise<CheckResult<ImageStats>> {
  const limits = { ...IMAGE_LIMITS, ...opts.limits };
  const issues = new Issues();
  const corrupt = new Issues();
  const stats: ImageStats = {
    records: 0,
    bytes: 0,
    decompressed_bytes: 0,
    members: 0,
    ignored: 0,
    corrupt: 0,
    width: null,
    height: null,
    channels: {},
    formats: {},
  };
  const labels = new Map<string, number>();
  let unlabeled = 0;
  let firstUnlabeled = "";
  const idx: { images: { name: string; s: IdxSummary }[]; labels: { name: string; s: IdxSummary }[] } = {
    images: [],
    labels: [],
  };
  // Two running totals, each capped: what the outer gzip layer produced, and what members expanded to.
  let expanded = 0;
  const guard = (total: number) => {
    if (total > limits.maxDecompressedBytes) {
      throw new SetTooLarge(
        `the set expands to more than ${limits.maxDecompressedBytes} bytes (a zip bomb, or too big to check); split it into several datasets`,
      );
    }
  };
  const grow = (n: number) => {
    expanded += n;
    guard(expanded);
  };
  const gunzipped = (n: number) => {
    stats.decompressed_bytes += n;
    guard(stats.decompressed_bytes);
  };

  const yielder = new Yielder();
  const visitImage = async (m: ArchiveMember) => {
    if (m.size > limits.maxImageBytes) {
      corrupt.add({ member: m.name, message: `${m.size} bytes; an image may be at most ${limits.maxImageBytes}` });
      return;
    }
    let img: ReturnType<typeof decodeImage>;
    try {
      const bytes = await collect(m.body(), limits.maxImageBytes, (max) => `larger than ${max} bytes`);
      grow(bytes.byteLength);
      // Decoding is the CPU loop here: let other requests in between images (one image at most in between).
      await yielder.tick(bytes.byteLength * 4);
      img = decodeImage(bytes, { maxPixels: limits.maxPixels });
    } catch (e) {
      if (e instanceof SetTooLarge || !(e instanceof ImageDecodeError || e instanceof ArchiveError)) throw e;
      corrupt.add({ member: m.name, message: e.message });
      return;
    }
    stats.records++;
    stats.width = widen(stats.width, img.width);
    stats.height = widen(stats.height, img.height);
    bump(stats.channels, String(img.channels));
    bump(stats.formats, img.format);
    const cls = classOf(m.name);
    if (cls === null) {
      if (unlabeled++ === 0) firstUnlabeled = m.name;
    } else {
      if (!labels.has(cls) && labels.size >= MAX_CLASSES) {
        throw new ArchiveError(`more than ${MAX_CLASSES} class folders; is the first folder really the class?`);
      }
      bump(labels, cls);
    }
  };

  const visitIdx = async (m: ArchiveMember, kind: "images" | "labels") => {
    const body = maybeGunzip(m.body(), m.name.toLowerCase());
    try {
      idx[kind].push({ name: m.name, s: await readIdx(counted(body, grow), kind, limits.maxDecompressedBytes) });
    } catch (e) {
      if (e instanceof SetTooLarge) throw e;
      issues.add({ member: m.name, message: e instanceof ArchiveError ? e.message : readFailure(".gz", e) });
    }
  };

  const visit = async (m: ArchiveMember) => {
    stats.members++;
    const kind = memberKind(m.name);
    if (kind === "image") await visitImage(m);
    else if (kind === "idx3") await visitIdx(m, "images");
    else if (kind === "idx1") await visitIdx(m, "labels");
    else stats.ignored++;
  };

  let zipEntries: Awaited<ReturnType<typeof readZipDirectory>> | null = null;
  if (opts.format === "zip") {
    try {
      zipEntries = await readZipDirectory(source.size, source.range);
    } catch (e) {
      if (!(e instanceof ArchiveError)) throw e;
      issues.add({ message: e.message });
    }
  }
  const src = hashedSource(await source.stream());
  try {
    if (opts.format === "idx" || opts.format === "idx.gz") {
      const s = await readIdx(
        counted(maybeGunzip(src.chunks, opts.format), gunzipped),
        "images",
        limits.maxDecompressedBytes,
      );
      idx.images.push({ name: "", s });
    } else if (zipEntries) {
      for await (const m of zipMembers(zipEntries, ByteReader.from(src.chunks))) await visit(m);
    } else if (opts.format === "tar" || opts.format === "tar.gz") {
      const raw = opts.format === "tar.gz" ? counted(maybeGunzip(src.chunks, opts.format), gunzipped) : src.chunks;
      for await (const m of tarMembers(ByteReader.from(raw))) await visit(m);
    }
  } catch (e) {
    issues.add({ message: e instanceof ArchiveError ? e.message : readFailure(opts.format, e) });
  }
  const sha256 = await src.finish();
  stats.bytes = src.bytes();
  if (!opts.format.endsWith(".gz")) stats.decompressed_bytes = stats.bytes;
  stats.corrupt = corrupt.count;

  summarizeIdx(idx, stats, labels, opts, issues);
  const isIdx = idx.images.length > 0;
  if (opts.purpose === "probe" || (unlabeled === 0 && labels.size > 0)) stats.labels = sorted(labels);
  if (unlabeled > 0 && !isIdx) stats.unlabeled = unlabeled;
  if (issues.count === 0 && corrupt.count === 0) {
    if (stats.records === 0) {
      issues.add({
        message:
          `no PNG or JPEG image found (${stats.ignored} member${stats.ignored === 1 ? "" : "s"} ignored: hidden, ` +
          "__MACOSX/ or other extensions); images must end in .png, .jpg or .jpeg",
      });
    } else if (opts.purpose === "probe") {
      if (unlabeled > 0 && !isIdx) {
        issues.add({
          member: firstUnlabeled,
          message:
            `${unlabeled} image${unlabeled === 1 ? " is" : "s are"} not in a class folder; a probe set needs every ` +
            "image inside a folder named after its class (`cat/001.png`)",
        });
      } else if (labels.size < 2) {
        issues.add({
          message:
            `a probe set needs at least 2 classes; found ${labels.size}` +
            (labels.size === 1 ? ` (\`${[...labels.keys()][0]}\`: the class is an image's FIRST folder)` : ""),
        });
      }
    }
  }
  // Structural problems first, then corrupt members, within one MAX_REPORTED list.
  const shown = [...issues.kept, ...corrupt.kept].slice(0, MAX_REPORTED);
  const hidden = corrupt.count - Math.max(0, shown.length - issues.kept.length);
  if (hidden > 0) shown.push({ message: `and ${hidden} more corrupt images` });
  if (issues.dropped > 0) shown.push({ message: `and ${issues.dropped} more problems like these` });
  return { sha256, stats, errors: shown };
}

/** Folds the IDX files found into the stats and checks they pair up (one idx3, its idx1 labels). */
function summarizeIdx(
  idx: { images: { name: string; s: IdxSummary }[]; labels: { name: string; s: IdxSummary }[] },
  stats: ImageStats,
  labels: Map<string, number>,
  opts: { format: ImageFormat; purpose: "pretrain" | "probe" },
  issues: Issues,
) {
  const names = (xs: { name: string }[]) => xs.map((x) => `\`${x.name}\``).join(", ");
  if (idx.images.length > 1) {
    issues.add({ message: `one *idx3* images file per archive; found ${names(idx.images)}` });
  }
  if (idx.labels.length > 1) {
    issues.add({ message: `one *idx1* labels file per archive; found ${names(idx.labels)}` });
  }
  const images = idx.images[0]?.s;
  const lab = idx.labels[0]?.s;
  if (!images) {
    if (lab) issues.add({ message: `${names(idx.labels)} holds labels but no *idx3* images file came with it` });
    return;
  }
  if (stats.records > 0) {
    issues.add({ message: "the archive holds both image files and IDX files; upload one kind per dataset" });
  }
  stats.records = images.count;
  stats.width = { min: images.cols as number, max: images.cols as number };
  stats.height = { min: images.rows as number, max: images.rows as number };
  stats.channels = { "1": images.count };
  stats.formats = { idx: images.count };
  if (lab) {
    if (lab.count !== images.count) {
      issues.add({
        message: `${names(idx.labels)} holds ${lab.count} labels for the ${images.count} images of ${names(idx.images)}`,
      });
    }
    for (const [k, v] of Object.entries(lab.labels ?? {})) labels.set(k, v);
  } else if (opts.purpose === "probe") {
    issues.add({
      message: opts.format.startsWith("idx")
        ? "an .idx file holds no labels; for a probe set upload a zip or tar with the *idx3* images file and its *idx1* labels file"
        : "a probe set needs labels: add the *idx1* labels file next to the *idx3* images file",
    });
  }
}
