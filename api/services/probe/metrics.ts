// Classification metrics with scikit-learn's conventions: confusion rows are true labels, columns
// predictions; a precision or recall with an empty denominator is 0; macro-F1 averages every label.

export type ClassMetrics = { precision: number; recall: number; f1: number; support: number };
export type ProbeMetrics = {
  accuracy: number;
  macro_f1: number;
  per_class: Record<string, ClassMetrics>;
  confusion: { labels: string[]; matrix: number[][] };
};

export function classificationMetrics(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  labels: readonly string[],
): ProbeMetrics {
  const K = labels.length;
  const matrix = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i] as number;
    const p = yPred[i] as number;
    (matrix[t] as number[])[p] = ((matrix[t] as number[])[p] as number) + 1;
    if (t === p) correct++;
  }
  const per_class: Record<string, ClassMetrics> = {};
  let f1Sum = 0;
  for (let c = 0; c < K; c++) {
    const tp = (matrix[c] as number[])[c] as number;
    const support = (matrix[c] as number[]).reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < K; r++) predicted += (matrix[r] as number[])[c] as number;
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    per_class[labels[c] as string] = { precision, recall, f1, support };
    f1Sum += f1;
  }
  return {
    accuracy: yTrue.length > 0 ? correct / yTrue.length : 0,
    macro_f1: K > 0 ? f1Sum / K : 0,
    per_class,
    confusion: { labels: [...labels], matrix },
  };
}
