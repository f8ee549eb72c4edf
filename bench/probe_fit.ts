// Benchmark: the linear probe's fit (api/services/probe/logreg.ts) on the 10,000 x 384 x 10 matrix
// bench/probe_fit.py writes, against scikit-learn's lbfgs on one thread (its timings in meta.json).
// Runs under Node (`npx tsx bench/probe_fit.ts /tmp/probe-bench`): the same V8 as workerd, same code;
// a Worker adds no work to a pure-JS loop, so the ratio carries over. It also times the fit as the
// work queue runs it (steps driven with a turn of the event loop every WORK_PER_TURN multiply-adds),
// so the cost of staying responsive is printed next to the straight-through time.
import { readFileSync } from "node:fs";
import path from "node:path";
import { argmaxRows, defaultMemory, fitLogReg, fitLogRegSteps, predictProba } from "../api/services/probe/logreg";
import { runYielding, WORK_PER_TURN } from "../api/services/probe/steps";
import { useWasmKernel } from "../api/services/probe/wasm_kernel";

const dir = process.argv[2] ?? "/tmp/probe-bench";
const meta = JSON.parse(readFileSync(path.join(dir, "meta.json"), "utf8")) as {
  n_train: number;
  n_test: number;
  dims: number;
  classes: number;
  C: number;
  sklearn: { tol: number; seconds: number; cpu_seconds: number; iterations: number; test_accuracy: number }[];
};
const f64 = (name: string) => Float64Array.from(new Float32Array(readFileSync(path.join(dir, name)).buffer.slice(0)));
const i32 = (name: string) => new Int32Array(readFileSync(path.join(dir, name)).buffer.slice(0));
const Xtr = { rows: meta.n_train, cols: meta.dims, data: f64("Xtr.f32") };
const Xte = { rows: meta.n_test, cols: meta.dims, data: f64("Xte.f32") };
const ytr = i32("ytr.i32");
const yte = i32("yte.i32");
const repeats = Number(process.env.REPEATS ?? 1);
// The WASM SIMD kernel the Worker uses is the only dense kernel.
const kernel = "wasm";
useWasmKernel(
  new WebAssembly.Module(readFileSync(new URL("../api/services/probe/wasm/logreg_kernel.wasm", import.meta.url))),
);
const memory = process.env.MEMORY ? Number(process.env.MEMORY) : undefined;
const tols = process.env.TOLS ? process.env.TOLS.split(",").map(Number) : undefined;

for (const ref of meta.sklearn.filter((r) => !tols || tols.includes(r.tol))) {
  let best = Infinity;
  let bestCpu = Infinity;
  let acc = 0;
  let iterations = 0;
  let evaluations = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const { model, info } = fitLogReg(Xtr, ytr, meta.classes, { C: meta.C, tol: ref.tol, maxIter: 1000, memory });
    const cu = process.cpuUsage(c0);
    best = Math.min(best, (performance.now() - t0) / 1000);
    bestCpu = Math.min(bestCpu, (cu.user + cu.system) / 1e6);
    iterations = info.iterations;
    evaluations = info.evaluations;
    const pred = argmaxRows(predictProba(model, Xte), meta.classes);
    acc = pred.reduce((a, p, i) => a + (p === yte[i] ? 1 : 0), 0) / meta.n_test;
  }
  // The same fit with event-loop turns: identical numbers, the turns' cost on top.
  let turns = 0;
  let turning = true;
  const count = () => {
    if (!turning) return;
    turns++;
    setTimeout(count, 0);
  };
  setTimeout(count, 0);
  const y0 = performance.now();
  const yielded = await runYielding(
    fitLogRegSteps(Xtr, ytr, meta.classes, { C: meta.C, tol: ref.tol, maxIter: 1000, memory }),
  );
  const yieldingSeconds = (performance.now() - y0) / 1000;
  turning = false;
  if (yielded.info.iterations !== iterations) throw new Error("the yielding fit took other iterations");
  console.log(
    JSON.stringify({
      tol: ref.tol,
      shape: `${meta.n_train}x${meta.dims}x${meta.classes}`,
      C: meta.C,
      kernel,
      lbfgs_memory: memory ?? defaultMemory(meta.dims * meta.classes + meta.classes),
      ts_seconds: +best.toFixed(3),
      sklearn_seconds: +ref.seconds.toFixed(3),
      time_ratio_ts_over_sklearn: +(best / ref.seconds).toFixed(2),
      ts_cpu_seconds: +bestCpu.toFixed(3),
      sklearn_cpu_seconds: +ref.cpu_seconds.toFixed(3),
      cpu_ratio_ts_over_sklearn: +(bestCpu / ref.cpu_seconds).toFixed(2),
      ts_iterations: iterations,
      ts_evaluations: evaluations,
      ts_yielding_seconds: +yieldingSeconds.toFixed(3),
      yielding_turns: turns,
      work_per_turn: WORK_PER_TURN,
      ms_between_turns: +((yieldingSeconds * 1000) / Math.max(turns, 1)).toFixed(2),
      sklearn_iterations: ref.iterations,
      per_iteration_ratio: +(best / iterations / (ref.seconds / ref.iterations)).toFixed(2),
      ts_accuracy: acc,
      sklearn_accuracy: ref.test_accuracy,
      accuracy_gap_points: +((acc - ref.test_accuracy) * 100).toFixed(2),
    }),
  );
}
