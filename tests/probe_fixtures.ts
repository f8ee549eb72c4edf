// The scikit-learn reference sets of tests/fixtures/probe (see its README), decoded.
import type { Matrix } from "../api/services/probe/matrix";
import digitsJson from "./fixtures/probe/digits.json";
import fortunesJson from "./fixtures/probe/fortunes.json";

export type ReferenceSet = {
  name: string;
  X: Matrix;
  y: Int32Array;
  classes: number;
  labelNames: string[];
  texts?: string[];
  trainIdx: number[];
  testIdx: number[];
  foldOfTrain: Int32Array;
  grid: number[];
  folds: number;
  cvScores: number[];
  chosenC: number;
  testAccuracyByC: Record<string, number>;
  testAccuracy: number;
  tfidfAccuracy?: number;
};

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const cKey = (c: number) => (Number.isInteger(c) ? c.toFixed(1) : String(c));

function common(j: typeof digitsJson | typeof fortunesJson) {
  return {
    y: Int32Array.from(j.labels),
    trainIdx: j.train_idx,
    testIdx: j.test_idx,
    foldOfTrain: Int32Array.from(j.fold_of_train),
    grid: j.grid,
    folds: j.folds,
    cvScores: j.cv_scores,
    chosenC: j.chosen_C,
    testAccuracyByC: Object.fromEntries(
      j.grid.map((c) => [String(c), (j.test_accuracy_by_C as Record<string, number>)[cKey(c)] as number]),
    ),
    testAccuracy: j.test_accuracy,
  };
}

export function digits(): ReferenceSet {
  const j = digitsJson;
  const data = new Float64Array(j.rows * j.cols);
  for (let i = 0; i < data.length; i++) data[i] = Number.parseInt(j.pixels[i] as string, 17);
  return {
    name: "digits",
    X: { rows: j.rows, cols: j.cols, data },
    classes: 10,
    labelNames: Array.from({ length: 10 }, (_, i) => String(i)),
    ...common(j),
  };
}

export function fortunes(): ReferenceSet {
  const j = fortunesJson;
  const bin = atob(j.embeddings_f16);
  const data = new Float64Array(j.rows * j.cols);
  for (let i = 0; i < data.length; i++) data[i] = halfToFloat(bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8));
  return {
    name: "fortunes",
    X: { rows: j.rows, cols: j.cols, data },
    classes: j.label_names.length,
    labelNames: j.label_names,
    texts: j.texts,
    tfidfAccuracy: j.tfidf_C10_test_accuracy,
    ...common(j),
  };
}
