// The raw-feature baseline for text: TF-IDF as scikit-learn's TfidfVectorizer(sublinear_tf=True,
// min_df=2) builds it (token pattern \b\w\w+\b, lowercase, smooth idf, rows L2-normalised), fitted
// on train only so the test split stays unseen.
import type { Csr } from "./sparse";
import { runSync, type Steps } from "./steps";

/** Features kept (most frequent by document frequency), to bound memory on large sets. */
export const MAX_TFIDF_FEATURES = 20_000;

const tokenize = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}_]{2,}/gu) ?? [];

export type Tfidf = {
  vocabulary: Map<string, number>;
  idf: Float64Array;
  transform(texts: string[]): Csr;
  /** `transform` as steps (steps.ts): yields its work after each text. */
  transformSteps(texts: string[]): Steps<Csr>;
};

/**
 * Work of tokenizing one text, in the units steps.ts counts (regex, lower-casing, map lookups): 40
 * per character keeps the baseline's slices on 4000 fortunes near the fits' (~17 ms in Node), where
 * one pass over the texts was a single ~100 ms slice before.
 */
const textWork = (t: string) => 40 * t.length + 200;

export const fitTfidf = (train: string[], opts: { minDf?: number; maxFeatures?: number } = {}): Tfidf =>
  runSync(fitTfidfSteps(train, opts));

export function* fitTfidfSteps(train: string[], opts: { minDf?: number; maxFeatures?: number } = {}): Steps<Tfidf> {
  const minDf = opts.minDf ?? 2;
  const df = new Map<string, number>();
  for (const t of train) {
    for (const w of new Set(tokenize(t))) df.set(w, (df.get(w) ?? 0) + 1);
    yield textWork(t);
  }
  const kept = [...df.entries()]
    .filter(([, c]) => c >= minDf)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, opts.maxFeatures ?? MAX_TFIDF_FEATURES)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const vocabulary = new Map(kept.map(([w], i) => [w, i]));
  const n = train.length;
  const idf = Float64Array.from(kept, ([, c]) => Math.log((1 + n) / (1 + c)) + 1);
  function* transformSteps(texts: string[]): Steps<Csr> {
    const indptr = new Int32Array(texts.length + 1);
    const indices: number[] = [];
    const values: number[] = [];
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i] as string;
      const tf = new Map<number, number>();
      for (const w of tokenize(t)) {
        const j = vocabulary.get(w);
        if (j !== undefined) tf.set(j, (tf.get(j) ?? 0) + 1);
      }
      const cols = [...tf.keys()].sort((a, b) => a - b);
      const row = cols.map((j) => (1 + Math.log(tf.get(j) as number)) * (idf[j] as number));
      const norm = Math.hypot(...row);
      cols.forEach((j, q) => {
        indices.push(j);
        values.push(norm > 0 ? (row[q] as number) / norm : 0);
      });
      indptr[i + 1] = indices.length;
      yield textWork(t);
    }
    return {
      rows: texts.length,
      cols: vocabulary.size,
      indptr,
      indices: Int32Array.from(indices),
      values: Float64Array.from(values),
    };
  }
  return { vocabulary, idf, transformSteps, transform: (texts) => runSync(transformSteps(texts)) };
}
