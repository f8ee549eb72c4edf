// Interactive latency while long work runs (issue 15): samples `GET /v1/models` at a steady rate
// while a large dataset check and then a large evaluation run on the work queue, next to an idle
// anchor measured first in the same run. It starts nothing itself and talks to loopback only.
//
//   npx tsx bench/background_load.ts --api http://127.0.0.1:8787 --key ss_... --model minilm \
//       [--check-mib 100] [--eval-items 4000] [--max 900] [--samples out.json]
//
// Real data only: the check uploads tests/fixtures/corpus (Moby-Dick) repeated to --check-mib as
// jsonl; the evaluation reads --eval-items quotes of the 10 largest Debian fortunes categories
// (`apt-get install -y fortunes`). Prints p50/p95 of /v1/models per phase (idle, uploading,
// validating, evaluating) and the evaluation's progress; exits 1 when a sample is not a 200.
// --samples writes every sample (phase, start in epoch ms, latency, status) as JSON.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs, promisify } from "node:util";
import { loopbackApi, positive } from "./args";

const ROOT = path.join(import.meta.dirname, "..");
const FORTUNES = "/usr/share/games/fortunes";
const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    api: { type: "string" },
    key: { type: "string" },
    model: { type: "string", default: "demo" },
    "check-mib": { type: "string", default: "100" },
    "eval-items": { type: "string", default: "4000" },
    anchor: { type: "string", default: "10" },
    rate: { type: "string", default: "5" },
    max: { type: "string", default: "900" },
    samples: { type: "string" },
  },
});

const api = loopbackApi(values.api, "this benchmark");
const key = values.key ?? process.env.SELFSUP_API_KEY ?? "";
if (!key) throw new Error("--key (or SELFSUP_API_KEY) is required: an admin key (train, probe and embed scopes)");
const checkBytes = positive("check-mib", values["check-mib"], 1024) * 1024 * 1024;
const evalItems = Math.floor(positive("eval-items", values["eval-items"], 100_000));
const anchorMs = positive("anchor", values.anchor, 600) * 1000;
const intervalMs = 1000 / positive("rate", values.rate, 100);
const maxMs = positive("max", values.max, 7200) * 1000;

const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
async function call<T>(method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${api}${route}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Moby-Dick lines as jsonl records, repeated until the file is `bytes` long. */
function corpusFile(bytes: number): string {
  const dir = path.join(ROOT, "tests/fixtures/corpus");
  const lines = readdirSync(dir)
    .filter((f) => f.endsWith(".txt"))
    .flatMap((f) => readFileSync(path.join(dir, f), "utf8").split("\n"))
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((text) => `${JSON.stringify({ text })}\n`);
  const block = lines.join("");
  const file = path.join(tmpdir(), `selfsup-check-${bytes}.jsonl`);
  const copies = Math.ceil(bytes / Buffer.byteLength(block));
  writeFileSync(file, block.repeat(copies));
  return file;
}

/** `n` quotes of the 10 largest fortunes categories, dealt round-robin so every class is present. */
function fortunesFile(n: number): string {
  let names: string[];
  try {
    names = readdirSync(FORTUNES).filter((f) => !f.includes(".") && statSync(path.join(FORTUNES, f)).isFile());
  } catch {
    throw new Error(`${FORTUNES} is missing: install the labeled quotes with \`apt-get install -y fortunes\``);
  }
  const byClass = names
    .map((label) => ({
      label,
      quotes: readFileSync(path.join(FORTUNES, label), "utf8")
        .split(/\n%\n/)
        .map((q) => q.trim())
        .filter((q) => q.length > 0),
    }))
    .sort((a, b) => b.quotes.length - a.quotes.length)
    .slice(0, 10);
  const out: string[] = [];
  for (let i = 0; out.length < n && byClass.some((c) => i < c.quotes.length); i++) {
    for (const c of byClass)
      if (out.length < n && i < c.quotes.length) out.push(JSON.stringify({ text: c.quotes[i], label: c.label }));
  }
  const file = path.join(tmpdir(), `selfsup-eval-${n}.jsonl`);
  writeFileSync(file, `${out.join("\n")}\n`);
  return file;
}

/** One sample; `at` is its start in epoch ms, to line it up with the server's log. */
type Sample = { phase: string; at: number; ms: number; status: number };
const samples: Sample[] = [];
let phase = "idle";
let sampling = true;

/** One `GET /v1/models` every interval, tagged with the phase it started in, until stopped. */
async function sampler(): Promise<void> {
  const inflight: Promise<void>[] = [];
  while (sampling) {
    const tag = phase;
    const at = Date.now();
    const t0 = performance.now();
    inflight.push(
      fetch(`${api}/v1/models`, { headers, signal: AbortSignal.timeout(60_000) })
        .then(async (r) => {
          await r.arrayBuffer();
          samples.push({ phase: tag, at, ms: performance.now() - t0, status: r.status });
        })
        .catch(() => {
          samples.push({ phase: tag, at, ms: performance.now() - t0, status: 0 });
        }),
    );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await Promise.all(inflight);
}

/** Uploads with the CLI (which waits for the check); `onId` sees the dataset id once it exists. */
async function upload(file: string, purpose: "pretrain" | "probe", name: string) {
  const env = { ...process.env, SELFSUP_API_URL: api, SELFSUP_API_KEY: key };
  const args = [
    path.join(ROOT, "cli/bin.mjs"),
    "datasets",
    "upload",
    file,
    "--purpose",
    purpose,
    "--name",
    name,
    "--json",
  ];
  const { stdout } = await run(process.execPath, args, { env, cwd: tmpdir(), maxBuffer: 1 << 24, timeout: maxMs });
  return JSON.parse(stdout) as { id: string; status: string };
}

/** Sets `phase` from the newest dataset's status while the CLI uploads and the queue checks it. */
async function watchDataset(name: string, done: () => boolean) {
  while (!done()) {
    const list = await call<{ data: { name: string; status: string }[] }>("GET", "/v1/datasets").catch(() => null);
    const d = list?.data.find((x) => x.name === name);
    if (d) phase = d.status === "validating" ? "validating" : d.status === "uploading" ? "uploading" : phase;
    await new Promise((r) => setTimeout(r, 500));
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : Number.NaN;
};

async function main() {
  const started = performance.now();
  const labeled = fortunesFile(evalItems);
  const big = corpusFile(checkBytes);
  const sampling_ = sampler();
  await new Promise((r) => setTimeout(r, anchorMs));

  phase = "uploading";
  const name = `bench-check-${Date.now()}`;
  let uploaded = false;
  const watch = watchDataset(name, () => uploaded);
  const t0 = performance.now();
  const d = await upload(big, "pretrain", name).finally(() => {
    uploaded = true;
  });
  await watch;
  console.log(
    `check: ${(checkBytes / 2 ** 20).toFixed(0)} MiB → ${d.status} in ${((performance.now() - t0) / 1000).toFixed(1)} s (upload + check)`,
  );

  phase = "idle-2";
  const probe = await upload(labeled, "probe", `bench-eval-${Date.now()}`);
  phase = "evaluating";
  const t1 = performance.now();
  const ev = await call<{ id: string; status: string }>("POST", "/v1/evaluations", {
    models: [values.model],
    data: { dataset: probe.id },
  });
  let status = ev.status;
  let progress: unknown = null;
  while (status === "running" && performance.now() - started < maxMs) {
    await new Promise((r) => setTimeout(r, 2000));
    const cur = await call<{ status: string; progress?: unknown }>("GET", `/v1/evaluations/${ev.id}`);
    status = cur.status;
    progress = cur.progress ?? null;
  }
  console.log(
    `evaluation: ${evalItems} items, ${values.model}: ${status} after ${((performance.now() - t1) / 1000).toFixed(0)} s` +
      (status === "running" ? ` (stopped measuring at --max; progress ${JSON.stringify(progress)})` : ""),
  );
  sampling = false;
  await sampling_;
  if (values.samples) writeFileSync(values.samples, JSON.stringify(samples));

  console.log("\nGET /v1/models    n     p50        p95        max");
  for (const ph of ["idle", "uploading", "validating", "idle-2", "evaluating"]) {
    const ok = samples.filter((s) => s.phase === ph && s.status === 200).map((s) => s.ms);
    if (ok.length === 0) continue;
    const f = (x: number) => `${x.toFixed(1)} ms`.padStart(10);
    console.log(
      `${ph.padEnd(14)} ${String(ok.length).padStart(5)} ${f(pct(ok, 50))} ${f(pct(ok, 95))} ${f(Math.max(...ok))}`,
    );
  }
  const bad = samples.filter((s) => s.status !== 200);
  if (bad.length > 0) {
    console.error(
      `FAIL: ${bad.length} of ${samples.length} GET /v1/models answers were not 200 (first: ${bad[0]?.status})`,
    );
    process.exit(1);
  }
}

await main();
