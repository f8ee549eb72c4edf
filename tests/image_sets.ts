// Real image datasets built inside the test isolate: the committed Fashion-MNIST sheet (200 images,
// tests/fixtures/images/fashion-mnist-200.SOURCE.md) cut back into 28×28 images, written as PNGs,
// and packed as zip (fflate's writer), ustar tar, gzip, and IDX — the formats of decision 0005.
import { gzipSync, type ZipOptions, zipSync } from "fflate";
import { encodeGreyPng } from "../api/services/dataset_records";
import { decodeImage } from "../api/services/image/decode";
import sheetUrl from "./fixtures/images/fashion-mnist-200.png?inline";
import { fromDataUrl } from "./modal_fixture";
import { digits } from "./probe_fixtures";

export const SIDE = 28;
export const PER_CLASS = 20;
export const CLASSES = 10;

export { encodeGreyPng, fromDataUrl };

export type GreyImage = { pixels: Uint8Array; label: number };

/** The 200 Fashion-MNIST images: 20 per class, class = row of the sheet. */
export function fashionImages(): GreyImage[] {
  const sheet = decodeImage(fromDataUrl(sheetUrl));
  if (sheet.channels !== 1 || sheet.width !== SIDE * PER_CLASS) throw new Error("unexpected fashion sheet");
  const out: GreyImage[] = [];
  for (let c = 0; c < CLASSES; c++) {
    for (let j = 0; j < PER_CLASS; j++) {
      const pixels = new Uint8Array(SIDE * SIDE);
      for (let y = 0; y < SIDE; y++) {
        const row = (c * SIDE + y) * sheet.width + j * SIDE;
        pixels.set(sheet.data.subarray(row, row + SIDE), y * SIDE);
      }
      out.push({ pixels, label: c });
    }
  }
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export type Member = { name: string; bytes: Uint8Array };

/** `cls/idx.png` members of the Fashion images (class folder = the class digit). */
export function fashionPngMembers(images = fashionImages(), folder = true): Member[] {
  return images.map((im, i) => ({
    name: folder ? `${im.label}/${i}.png` : `${i}.png`,
    bytes: encodeGreyPng(im.pixels, SIDE, SIDE),
  }));
}

/** A zip by fflate's writer; `stored` names members kept uncompressed (method 0). */
export function makeZip(members: Member[], stored: (name: string) => boolean = () => false): Uint8Array {
  const files: Record<string, [Uint8Array, ZipOptions]> = {};
  for (const m of members) files[m.name] = [m.bytes, { level: stored(m.name) ? 0 : 6 }];
  return zipSync(files);
}

/** A ustar tar: 512-byte headers (long paths split into prefix/name), data padded to 512, two zero blocks. */
export function makeTar(members: Member[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const octal = (h: Uint8Array, at: number, len: number, n: number) =>
    h.set(enc.encode(`${n.toString(8).padStart(len - 1, "0")}\0`), at);
  for (const m of members) {
    const h = new Uint8Array(512);
    let name = m.name;
    let prefix = "";
    if (name.length > 100) {
      const cut = name.slice(0, 155).lastIndexOf("/");
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    h.set(enc.encode(name), 0);
    octal(h, 100, 8, 0o644);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, m.bytes.length);
    octal(h, 136, 12, 1_700_000_000);
    h.fill(0x20, 148, 156);
    h[156] = 0x30;
    h.set(enc.encode("ustar\0"), 257);
    h.set(enc.encode("00"), 263);
    h.set(enc.encode(prefix), 345);
    let sum = 0;
    for (const b of h) sum += b;
    h.set(enc.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
    parts.push(h, m.bytes, new Uint8Array((512 - (m.bytes.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return concat(parts);
}

export const gzip = (b: Uint8Array) => gzipSync(b);

/** IDX files of the images: idx3 (00 00 08 03, n, rows, cols) and idx1 labels (00 00 08 01, n). */
export function makeIdx(images: GreyImage[]): { images: Uint8Array; labels: Uint8Array } {
  const img = new Uint8Array(16 + images.length * SIDE * SIDE);
  const v = new DataView(img.buffer);
  v.setUint32(0, 0x00000803);
  v.setUint32(4, images.length);
  v.setUint32(8, SIDE);
  v.setUint32(12, SIDE);
  images.forEach((im, i) => {
    img.set(im.pixels, 16 + i * SIDE * SIDE);
  });
  const lab = new Uint8Array(8 + images.length);
  const w = new DataView(lab.buffer);
  w.setUint32(0, 0x00000801);
  w.setUint32(4, images.length);
  images.forEach((im, i) => {
    lab[8 + i] = im.label;
  });
  return { images: img, labels: lab };
}

/** Rewrites the declared uncompressed size of zip member `name` (central directory and local header). */
export function lieAboutSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  const v = new DataView(out.buffer);
  const enc = new TextEncoder().encode(name);
  const matches = (at: number, nameAt: number) => enc.every((b, i) => out[at + nameAt + i] === b);
  for (let p = 0; p + 46 < out.length; p++) {
    const sig = v.getUint32(p, true);
    if (sig === 0x04034b50 && v.getUint16(p + 26, true) === enc.length && matches(p, 30))
      v.setUint32(p + 22, size, true);
    if (sig === 0x02014b50 && v.getUint16(p + 28, true) === enc.length && matches(p, 46))
      v.setUint32(p + 24, size, true);
  }
  return out;
}

/**
 * The 300 sklearn digits the tiny image encoder never trained on (the last 30 of each class, as
 * gpu-trainer/selfsup_trainer/vision/fixture.py holds out), as 8×8 PNGs in class folders; pixels
 * are `rint(v * 255 / 16)` like the trainer's sample_data.digits().
 */
export function heldOutDigits(perClass = 30): Member[] {
  const set = digits();
  const picked: number[] = [];
  for (let c = 0; c < 10; c++) {
    const of = [...set.y.keys()].filter((i) => set.y[i] === c);
    picked.push(...of.slice(-perClass));
  }
  picked.sort((a, b) => a - b);
  return picked.map((i) => {
    const pixels = Uint8Array.from({ length: 64 }, (_, k) =>
      Math.round(((set.X.data[i * 64 + k] as number) * 255) / 16),
    );
    return { name: `${set.y[i]}/${i}.png`, bytes: encodeGreyPng(pixels, 8, 8) };
  });
}
