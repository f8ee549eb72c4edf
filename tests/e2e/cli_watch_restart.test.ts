// `selfsup jobs show ID --watch` outlives an API restart: the real `wrangler dev` is stopped while
// the CLI watches a job, the CLI says it is retrying, the API comes back on the same port and state,
// the job is cancelled, and the watch ends with the job's final status (issue 14, item 7).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { uploadDataset } from "../../cli/upload";
import { createSelfsupClient, unwrap } from "../../client";
import { localS3Credentials } from "../../scripts/local-s3.mjs";
import { freePort } from "./wrangler_dev";

const ROOT = path.join(import.meta.dirname, "../..");
const WRANGLER = path.join(ROOT, "node_modules/.bin/wrangler");
const CORPUS = path.join(ROOT, "tests/fixtures/corpus/moby-dick-excerpt.txt");
const persistDir = mkdtempSync(path.join(tmpdir(), "selfsup-watch-"));
const ENV = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" };

const d1 = (args: string[]) =>
  execFileSync(WRANGLER, ["d1", ...args, "--local", "--persist-to", persistDir], {
    cwd: ROOT,
    env: ENV,
    stdio: ["ignore", "pipe", "pipe"],
  });

/** The admin key of a fresh tenant in the persisted local D1. */
function seed(): string {
  d1(["migrations", "apply", "DB"]);
  const id = randomBytes(8).toString("hex");
  const key = `ss_${randomBytes(4).toString("hex")}_${randomBytes(16).toString("hex")}`;
  const hash = createHash("sha256").update(key).digest("hex");
  d1([
    "execute",
    "DB",
    "--command",
    `insert into tenants (id, name) values ('tnt_${id}', 'watch'); ` +
      `insert into api_keys (id, tenant_id, name, prefix, hash, scopes) values ('key_${id}', 'tnt_${id}', 'admin', '${key.slice(0, 11)}', '${hash}', '["admin"]');`,
  ]);
  return key;
}

const servers: ChildProcess[] = [];

/** `wrangler dev` on `port` over the same persisted state; resolves once /health answers. */
async function startApi(port: number): Promise<ChildProcess> {
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistDir];
  args.push("--show-interactive-dev-session=false", "--inspector-port", String(await freePort()));
  for (const [k, v] of Object.entries(localS3Credentials())) args.push("--var", `${k}:${v}`);
  const child = spawn(WRANGLER, args, { cwd: ROOT, env: ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  servers.push(child);
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return child;
    } catch {}
    if (Date.now() > deadline) throw new Error(`wrangler dev did not answer /health in 120 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopApi(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {}
}

afterAll(async () => {
  for (const s of servers) await stopApi(s);
  rmSync(persistDir, { recursive: true, force: true });
});

const until = async (what: string, ok: () => boolean, seconds: number, log: () => string) => {
  const deadline = Date.now() + seconds * 1000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${seconds} s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

describe("selfsup jobs show --watch", () => {
  it("keeps watching across an API restart and ends with the job's status", async () => {
    const key = seed();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const first = await startApi(port);
    const client = createSelfsupClient({ baseUrl: url, apiKey: key });
    const dataset = await uploadDataset(client, url, CORPUS, { purpose: "pretrain", stateDir: persistDir });
    // No trainer runs here: the job stays queued until it is cancelled.
    const job = await unwrap(
      client.POST("/v1/pretraining/jobs", {
        body: {
          dataset: dataset.id,
          objective: "mlm",
          model: "watched",
          preset: "tiny",
          hyperparameters: { steps: 5 },
        },
      }),
    );

    const watch = spawn(process.execPath, [path.join(ROOT, "cli/bin.mjs"), "jobs", "show", job.id, "--watch"], {
      cwd: persistDir,
      env: { ...process.env, SELFSUP_API_URL: url, SELFSUP_API_KEY: key },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    watch.stdout?.on("data", (d) => {
      stdout += d;
    });
    watch.stderr?.on("data", (d) => {
      stderr += d;
    });
    const exit = new Promise<number | null>((r) => watch.once("exit", (code) => r(code)));
    const log = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
    try {
      await until("progress line", () => stderr.includes("[queued]"), 60, log);

      await stopApi(first);
      await until("retry notice", () => stderr.includes(`API at ${url} unreachable`), 30, log);
      expect(watch.exitCode).toBeNull();

      await startApi(port);
      await until("reconnect notice", () => stderr.includes(`API at ${url} is back`), 30, log);
      await unwrap(client.POST("/v1/pretraining/jobs/{id}/cancel", { params: { path: { id: job.id } } }));
      const code = await Promise.race([exit, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 30_000))]);
      expect(code, log()).toBe(1); // the watched job did not succeed
      expect(stdout).toContain("cancelled");
    } finally {
      watch.kill("SIGKILL");
    }
  }, 400_000);
});
