// The evaluation map's PCA (dashboard/src/pca.ts) on cases small enough to check by hand.
import { describe, expect, it } from "vitest";
import { evenSample, pca2 } from "../../dashboard/src/pca";

const close = (a: number, b: number) => expect(a).toBeCloseTo(b, 6);

describe("pca2", () => {
  it("finds the axes of a cross: x varies most, then y, z not at all", () => {
    // Mean 0; variances (n − 1 = 3): x (9 + 9) / 3 = 6, y (1 + 1) / 3 = 2/3, z 0.
    const r = pca2([
      [3, 0, 0],
      [-3, 0, 0],
      [0, 1, 0],
      [0, -1, 0],
    ]);
    for (const [i, x] of [1, 0, 0].entries()) close(r.components[0][i] as number, x);
    for (const [i, x] of [0, 1, 0].entries()) close(r.components[1][i] as number, x);
    close(r.variances[0], 6);
    close(r.variances[1], 2 / 3);
    close(r.explained[0], 0.9);
    close(r.explained[1], 0.1);
    const expected = [
      [3, 0],
      [-3, 0],
      [0, 1],
      [0, -1],
    ];
    for (const [i, p] of r.points.entries()) {
      close(p[0], expected[i]?.[0] as number);
      close(p[1], expected[i]?.[1] as number);
    }
  });

  it("finds a diagonal direction and ignores a shift of every point", () => {
    // Centered on (10, -5): the long axis is (1, 1)/√2 (variance 16/3), the short one (1, −1)/√2 (4/3).
    const r = pca2([
      [12, -3],
      [8, -7],
      [11, -6],
      [9, -4],
    ]);
    const s = Math.SQRT1_2;
    close(r.components[0][0] as number, s);
    close(r.components[0][1] as number, s);
    close(r.components[1][0] as number, s);
    close(r.components[1][1] as number, -s);
    close(r.variances[0], 16 / 3);
    close(r.variances[1], 4 / 3);
    close(r.points[0]?.[0] as number, 2 * Math.SQRT2);
    close(r.points[0]?.[1] as number, 0);
    close(r.points[2]?.[0] as number, 0);
    close(r.points[2]?.[1] as number, Math.SQRT2);
  });

  it("keeps the two components orthonormal and their variances equal to the projections' variances", () => {
    // A deterministic 60 × 8 cloud stretched unevenly per dimension.
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31 - 0.5;
    };
    const data = Array.from({ length: 60 }, () => Array.from({ length: 8 }, (_, j) => rand() * (8 - j)));
    const r = pca2(data);
    const [a, b] = r.components;
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * (y[i] as number), 0);
    close(dot(a, a), 1);
    close(dot(b, b), 1);
    close(dot(a, b), 0);
    for (const k of [0, 1] as const) {
      const xs = r.points.map((p) => p[k]);
      const m = xs.reduce((s, x) => s + x, 0) / xs.length;
      close(m, 0);
      close(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1), r.variances[k]);
    }
    expect(r.variances[0]).toBeGreaterThanOrEqual(r.variances[1]);
    expect(r.explained[0] + r.explained[1]).toBeLessThanOrEqual(1 + 1e-9);
  });

  it("maps identical rows to the origin instead of dividing by zero", () => {
    const r = pca2([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    expect(r.points).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    expect(r.explained).toEqual([0, 0]);
  });

  it("rejects empty input and ragged rows", () => {
    expect(() => pca2([])).toThrow(/no rows/);
    expect(() => pca2([[1, 2], [3]])).toThrow(/differ in length/);
  });
});

describe("evenSample", () => {
  it("takes every index when there are few, and spreads a cap evenly otherwise", () => {
    expect(evenSample(3, 5)).toEqual([0, 1, 2]);
    expect(evenSample(10, 5)).toEqual([0, 2, 4, 6, 8]);
    expect(evenSample(7, 3)).toEqual([0, 2, 4]);
  });
});
