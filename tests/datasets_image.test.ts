import { describe, expect, it } from "vitest";
import { checkImageDataset, type ImageSource } from "../api/services/dataset_check_image";
import { type DatasetBody, declareDataset, expectInvalid, readySet, uploadAndComplete } from "./dataset_upload";
import photoUrl from "./fixtures/images/photo.jpg?inline";
import progressiveUrl from "./fixtures/images/progressive.jpg?inline";
import rgbUrl from "./fixtures/images/rgb.png?inline";
import wideUrl from "./fixtures/images/wide_interlaced.png?inline";
import { expectProblem, newTenant } from "./helpers";
import {
  CLASSES,
  fashionImages,
  fashionPngMembers,
  fromDataUrl,
  gzip,
  lieAboutSize,
  makeIdx,
  makeTar,
  makeZip,
  PER_CLASS,
  SIDE,
} from "./image_sets";

const images = fashionImages();
const pngs = fashionPngMembers(images);
const byClass = Object.fromEntries(Array.from({ length: CLASSES }, (_, c) => [String(c), PER_CLASS]));
const photos = [
  { name: "photo.jpg", bytes: fromDataUrl(photoUrl) },
  { name: "progressive.jpg", bytes: fromDataUrl(progressiveUrl) },
  { name: "rgb.png", bytes: fromDataUrl(rgbUrl) },
  { name: "wide_interlaced.png", bytes: fromDataUrl(wideUrl) },
];
const junk = [
  { name: "__MACOSX/0/._0.png", bytes: new Uint8Array([0, 5, 22, 7]) },
  { name: ".DS_Store", bytes: new Uint8Array([0, 0, 0, 1]) },
  { name: "README.txt", bytes: new TextEncoder().encode("Fashion-MNIST excerpt") },
];

type Stats = {
  records: number;
  members: number;
  ignored: number;
  corrupt: number;
  width: { min: number; max: number };
  height: { min: number; max: number };
  channels: Record<string, number>;
  formats: Record<string, number>;
  labels?: Record<string, number>;
  unlabeled?: number;
};
const stats = (d: DatasetBody) => d.stats as unknown as Stats;

/** An in-memory object in the shape the check reads R2 through. */
const memorySource = (bytes: Uint8Array): ImageSource => ({
  size: bytes.length,
  range: async (offset, length) => bytes.slice(offset, offset + length),
  stream: async () => new Blob([bytes]).stream(),
});

describe("image datasets", () => {
  it("a zip probe set of class folders: every PNG decoded, classes counted, junk ignored", async () => {
    const { secret } = await newTenant(["train"]);
    // Every third member stored, the rest deflated: both zip methods.
    const zip = makeZip([...pngs, ...junk], (n) => n.endsWith("3.png"));
    const d = await readySet(secret, zip, { modality: "image", format: "zip", purpose: "probe" });
    expect(stats(d)).toMatchObject({
      records: 200,
      members: 203,
      ignored: 3,
      corrupt: 0,
      width: { min: SIDE, max: SIDE },
      height: { min: SIDE, max: SIDE },
      channels: { "1": 200 },
      formats: { png: 200 },
      labels: byClass,
    });
  });

  it("reads R2 a handful of times however many members: the zip directory, then one stream", async () => {
    const many = [...pngs, ...pngs.map((m) => ({ ...m, name: `copy/${m.name}` }))];
    for (const [format, bytes] of [
      ["zip", makeZip(many)],
      ["tar.gz", gzip(makeTar(many))],
    ] as const) {
      const calls = { range: 0, stream: 0 };
      const src = memorySource(bytes);
      const counted: ImageSource = {
        size: src.size,
        range: (o, l) => {
          calls.range++;
          return src.range(o, l);
        },
        stream: () => {
          calls.stream++;
          return src.stream();
        },
      };
      const r = await checkImageDataset(counted, { format, purpose: "pretrain" });
      expect(r.errors).toEqual([]);
      expect(r.stats.records).toBe(400);
      expect(calls).toEqual({ range: format === "zip" ? 1 : 0, stream: 1 });
    }
  });

  it("tar and tar.gz: grey and colour, PNG and JPEG (baseline, progressive, interlaced); root images unlabeled", async () => {
    const { secret } = await newTenant(["train"]);
    const members = [...pngs.slice(0, 30), ...photos];
    for (const format of ["tar", "tar.gz"] as const) {
      const tar = makeTar(members);
      const d = await readySet(secret, format === "tar" ? tar : gzip(tar), { modality: "image", format });
      expect(stats(d)).toMatchObject({
        records: 34,
        channels: { "1": 30, "3": 4 },
        formats: { png: 32, jpeg: 2 },
        width: { min: SIDE, max: 64 },
        height: { min: 19, max: 64 },
        unlabeled: 4,
      });
      expect(stats(d).labels).toBeUndefined();
    }
    // Long paths travel in the ustar prefix field.
    const deep = `${"nested/".repeat(20)}0/long.png`;
    const d = await readySet(secret, makeTar([{ name: deep, bytes: pngs[0]?.bytes as Uint8Array }]), {
      modality: "image",
      format: "tar",
    });
    expect(stats(d)).toMatchObject({ records: 1, labels: { nested: 1 } });
  });

  it("IDX: a bare idx / idx.gz images file, and a zip of idx3 + idx1 (gzipped inside) as a probe set", async () => {
    const { secret } = await newTenant(["train"]);
    const idx = makeIdx(images);
    for (const [format, bytes] of [
      ["idx", idx.images],
      ["idx.gz", gzip(idx.images)],
    ] as const) {
      const d = await readySet(secret, bytes, { modality: "image", format });
      expect(stats(d)).toMatchObject({ records: 200, width: { min: 28, max: 28 }, formats: { idx: 200 } });
    }
    const zip = makeZip([
      { name: "fashion/t10k-images-idx3-ubyte.gz", bytes: gzip(idx.images) },
      { name: "fashion/t10k-labels-idx1-ubyte", bytes: idx.labels },
    ]);
    const d = await readySet(secret, zip, { modality: "image", format: "zip", purpose: "probe" });
    expect(stats(d)).toMatchObject({ records: 200, channels: { "1": 200 }, labels: byClass });
  });

  it("lists corrupt members by name with the decoder's reason; the set is invalid", async () => {
    const { secret } = await newTenant(["train"]);
    const good = pngs.slice(0, 40);
    const truncated = (pngs[40] as { bytes: Uint8Array }).bytes.slice(0, 60);
    const zip = makeZip([
      ...good,
      { name: "3/truncated.png", bytes: truncated },
      { name: "3/not-an-image.jpg", bytes: new TextEncoder().encode("this is text, not a JPEG") },
    ]);
    const res = await uploadAndComplete(secret, zip, { modality: "image", format: "zip" });
    const p = await expectInvalid(res);
    const paths = p.errors?.map((e) => e.path);
    expect(paths).toEqual(["member 3/truncated.png", "member 3/not-an-image.jpg"]);
    expect(p.errors?.[1]?.message).toMatch(/not a PNG or JPEG/);
    expect(p.errors?.[0]?.message).toMatch(/PNG/i);
    expect(p.detail).toContain("member 3/truncated.png");
    const { api } = await import("./helpers");
    const d = await (await api(`/v1/datasets/${res.id}`, { key: secret })).json<DatasetBody>();
    expect(d.status).toBe("invalid");
    expect(stats(d)).toMatchObject({ records: 40, corrupt: 2 });
    expect(d.errors?.[0]).toMatchObject({ member: "3/truncated.png" });
  });

  it("caps the corrupt list and counts the rest", async () => {
    const { secret } = await newTenant(["train"]);
    const bad = Array.from({ length: 25 }, (_, i) => ({ name: `x/${i}.png`, bytes: new Uint8Array([1, 2, 3, i]) }));
    const res = await uploadAndComplete(secret, makeZip([...pngs.slice(0, 5), ...bad]), {
      modality: "image",
      format: "zip",
    });
    const p = await expectInvalid(res);
    expect(p.errors).toHaveLength(21);
    expect(p.errors?.[20]?.message).toBe("and 5 more corrupt images");
  });

  it("a truncated IDX names what its header declares and what arrived", async () => {
    const { secret } = await newTenant(["train"]);
    const idx = makeIdx(images).images;
    const cut = idx.slice(0, 16 + 120 * SIDE * SIDE + 100);
    const res = await uploadAndComplete(secret, cut, { modality: "image", format: "idx" });
    const p = await expectInvalid(res);
    expect(p.detail).toMatch(/truncated: the header declares 200 images of 28×28 .* \(120 complete images\)/);
    const labelsMismatch = makeZip([
      { name: "a-idx3-ubyte", bytes: idx },
      { name: "a-idx1-ubyte", bytes: makeIdx(images.slice(0, 150)).labels },
    ]);
    const r2 = await uploadAndComplete(secret, labelsMismatch, { modality: "image", format: "zip", purpose: "probe" });
    expect((await expectInvalid(r2)).detail).toContain("holds 150 labels for the 200 images");
    const notIdx = new Uint8Array(64).fill(7);
    const r3 = await uploadAndComplete(secret, notIdx, { modality: "image", format: "idx" });
    expect((await expectInvalid(r3)).detail).toContain("not an IDX file");
  });

  it("guards zip bombs: an oversized member is not inflated, a member inflating past its declared size stops", async () => {
    const { secret } = await newTenant(["train"]);
    // 8 MiB of zeros deflate to ~8 KiB; the directory then claims 1,000 bytes (or 100 MiB).
    const zeros = new Uint8Array(8 * 1024 * 1024);
    let zip = makeZip([
      ...pngs.slice(0, 3),
      { name: "0/bomb.png", bytes: zeros },
      { name: "0/huge.png", bytes: zeros },
    ]);
    expect(zip.length).toBeLessThan(100_000);
    zip = lieAboutSize(zip, "0/bomb.png", 1000);
    zip = lieAboutSize(zip, "0/huge.png", 100 * 1024 * 1024);
    const res = await uploadAndComplete(secret, zip, { modality: "image", format: "zip" });
    const p = await expectInvalid(res);
    expect(p.errors).toEqual([
      { path: "member 0/bomb.png", message: expect.stringMatching(/inflates past the 1000 bytes/) },
      {
        path: "member 0/huge.png",
        message: expect.stringMatching(/104857600 bytes; an image may be at most 16777216/),
      },
    ]);
    // The whole set's expansion is capped too (here at 1 MiB: 200 PNG members are 200 × 784+ bytes).
    const tooBig = await checkImageDataset(memorySource(makeTar(pngs)), {
      format: "tar",
      purpose: "pretrain",
      limits: { maxDecompressedBytes: 100_000 },
    });
    expect(tooBig.errors[0]?.message).toMatch(/expands to more than 100000 bytes/);
    const gz = await checkImageDataset(memorySource(gzip(makeIdx(images).images)), {
      format: "idx.gz",
      purpose: "pretrain",
      limits: { maxDecompressedBytes: 50_000 },
    });
    expect(gz.errors[0]?.message).toMatch(/declares 156800 bytes of data, over the 50000/);
  });

  it("probe sets need class folders and at least two classes; a set of no images says what was ignored", async () => {
    const { secret } = await newTenant(["train"]);
    const flat = fashionPngMembers(images.slice(0, 10), false);
    let r = await uploadAndComplete(secret, makeZip(flat), { modality: "image", format: "zip", purpose: "probe" });
    let p = await expectInvalid(r);
    expect(p.detail).toContain("10 images are not in a class folder");
    expect(p.errors?.[0]?.path).toBe("member 0.png");
    const wrapped = pngs.slice(0, 30).map((m) => ({ ...m, name: `fashion/${m.name}` }));
    r = await uploadAndComplete(secret, makeZip(wrapped), { modality: "image", format: "zip", purpose: "probe" });
    p = await expectInvalid(r);
    expect(p.detail).toContain("at least 2 classes; found 1 (`fashion`: the class is an image's FIRST folder)");
    r = await uploadAndComplete(secret, makeZip(junk), { modality: "image", format: "zip" });
    expect((await expectInvalid(r)).detail).toContain("no PNG or JPEG image found (3 members ignored");
    r = await uploadAndComplete(secret, new TextEncoder().encode("plain text, not a zip at all"), {
      modality: "image",
      format: "zip",
    });
    expect((await expectInvalid(r)).detail).toContain("not a readable zip archive");
    r = await uploadAndComplete(secret, new Uint8Array(2048).fill(65), { modality: "image", format: "tar" });
    expect((await expectInvalid(r)).detail).toContain("not a tar archive");
  });

  it("refuses formats of another modality, and label-less formats for probe sets, with 422 naming `format`", async () => {
    const { secret } = await newTenant(["train"]);
    const bytes = new Uint8Array([1, 2, 3]);
    let p = await expectProblem(await declareDataset(secret, bytes, { modality: "image", format: "jsonl" }), 422);
    expect(p.errors).toEqual([
      { path: "format", message: "use one of zip, tar, tar.gz, idx, idx.gz for image datasets" },
    ]);
    p = await expectProblem(await declareDataset(secret, bytes, { modality: "timeseries", format: "zip" }), 422);
    expect(p.detail).toContain("use one of jsonl, jsonl.gz, csv, csv.gz");
    p = await expectProblem(await declareDataset(secret, bytes, { modality: "text", format: "csv" }), 422);
    expect(p.errors?.[0]?.path).toBe("format");
    p = await expectProblem(
      await declareDataset(secret, bytes, { modality: "image", format: "idx.gz", purpose: "probe" }),
      422,
    );
    expect(p.detail).toContain("*idx1* labels file");
  });
});
