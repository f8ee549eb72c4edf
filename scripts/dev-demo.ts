// `make dev`, first run only: a demo that shows the whole loop. Imports the committed fixture encoders
// as `demo@1` (text), `digits@1` (image) and `power@1` (time series), so /v1/embeddings answers within
// seconds, uploads the committed public-domain corpus
// (tests/fixtures/corpus, Moby-Dick) and a small labeled set of real quotes (Debian fortunes,
// tests/fixtures/probe), queues a short tiny-preset MLM job that the local trainer turns into `demo@2`
// with `promote: "if_better"` on those quotes — so `demo` (alias latest) never silently gets worse a
// few minutes after start — then compares both versions with linear and kNN probes (and a TF-IDF
// baseline). Later runs do nothing.
import { readFileSync } from "node:fs";
import path from "node:path";
import { rowsTable, waitForWork } from "../cli/probes";
import { uploadDataset } from "../cli/upload";
import { createSelfsupClient, unwrap } from "../client";
import { writeFortunesJsonl } from "./fortunes-jsonl";

const ROOT = path.resolve(import.meta.dirname, "..");
const FIXTURE = path.join(ROOT, "tests/fixtures/tiny-encoder");
const [baseUrl = "http://127.0.0.1:8787"] = process.argv.slice(2);
const apiKey = readFileSync(path.join(ROOT, ".selfsup/dev-key"), "utf8").trim();
const client = createSelfsupClient({ baseUrl, apiKey });
const say = (s: string) => process.stderr.write(`[demo] ${s}\n`);

const existing = await client.GET("/v1/models/{name}", { params: { path: { name: "demo" } } });
if (existing.response.ok) {
  say("demo model present; nothing to seed");
  process.exit(0);
}

/** Registers a committed fixture encoder folder (manifest + the files it lists) as `name@1`. */
async function importFixture(name: string, dir: string) {
  const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as {
    files: Record<string, unknown>;
  };
  const form = new FormData();
  form.append("manifest", JSON.stringify(manifest));
  for (const f of Object.keys(manifest.files)) form.append("files", new Blob([readFileSync(path.join(dir, f))]), f);
  const imported = await fetch(`${baseUrl}/v1/models/${name}/versions`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}` },
    body: form,
  });
  if (imported.status !== 201) throw new Error(`importing ${dir} failed: ${await imported.text()}`);
}

await importFixture("demo", FIXTURE);
say('imported the fixture encoder as demo@1 — /v1/embeddings with model "demo" works now');
// An image and a time-series encoder too, so the README's image and series examples answer at once.
await importFixture("digits", path.join(ROOT, "tests/fixtures/tiny-image-encoder"));
await importFixture("power", path.join(ROOT, "tests/fixtures/tiny-series-encoder"));
say('also imported "digits" (image, MAE on sklearn digits) and "power" (time series, ItalyPowerDemand)');

const corpus = await uploadDataset(client, baseUrl, path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt"), {
  name: "moby-dick (demo)",
  purpose: "pretrain",
  stateDir: path.join(ROOT, ".selfsup"),
});
const probeFile = path.join(ROOT, ".selfsup/demo-fortunes.jsonl");
writeFortunesJsonl(probeFile);
const labeled = await uploadDataset(client, baseUrl, probeFile, {
  name: "fortunes (demo)",
  purpose: "probe",
  stateDir: path.join(ROOT, ".selfsup"),
});
const job = await unwrap(
  client.POST("/v1/pretraining/jobs", {
    body: {
      dataset: corpus.id,
      objective: "mlm",
      model: "demo",
      preset: "tiny",
      // eval_every 0: the quotes are scored once at the end, which is all promotion needs.
      hyperparameters: {
        steps: 120,
        batch_size: 16,
        max_tokens: 64,
        vocab_size: 2000,
        checkpoint_every: 40,
        eval_every: 0,
      },
      eval: { dataset: labeled.id },
      promote: "if_better",
      max_attempts: 3,
    },
  }),
);
say(`queued pretraining job ${job.id}; watch it with: npm run cli -- jobs watch ${job.id}`);
for (;;) {
  await new Promise((r) => setTimeout(r, 5000));
  const j = await unwrap(client.GET("/v1/pretraining/jobs/{id}", { params: { path: { id: job.id } } }));
  if (j.status === "succeeded") {
    const p = j.promotion;
    const pct1 = (x: number | null | undefined) => (typeof x === "number" ? `${(x * 100).toFixed(1)}%` : "n/a");
    if (!p || p.promoted) {
      say(
        `job ${job.id} succeeded: ${j.modelVersion} is now demo@latest (linear probe ${pct1(p?.candidate.linear)} vs ${p?.incumbent?.ref ?? "—"} ${pct1(p?.incumbent?.linear)})`,
      );
    } else {
      say(
        `job ${job.id} succeeded: ${j.modelVersion} registered, but its linear probe ${pct1(p.candidate.linear)} did not beat ${p.incumbent?.ref} ${pct1(p.incumbent?.linear)}, so demo@latest stays ${p.incumbent?.ref}`,
      );
    }
    break;
  }
  if (j.status === "failed" || j.status === "cancelled") {
    say(`job ${job.id} ${j.status}: ${j.error ?? ""}`);
    process.exit(1);
  }
}

// 202: the evaluation runs on the work queue; poll it (progress bar) until it succeeded.
const started = await unwrap(
  client.POST("/v1/evaluations", { body: { models: ["demo@1", "demo@2"], data: { dataset: labeled.id } } }),
);
const evaluation = await waitForWork(
  started,
  () => unwrap(client.GET("/v1/evaluations/{id}", { params: { path: { id: started.id } } })),
  "evaluate ",
);
say(`evaluation ${evaluation.id} on ${evaluation.n_test} held-out quotes (4 categories):`);
process.stderr.write(`${rowsTable(evaluation.rows)}\n`);
