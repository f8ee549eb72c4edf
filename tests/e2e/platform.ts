// The platform as a user runs it: a real `wrangler dev`, one trainer `serve` process with a
// trainer-scoped key, and the `selfsup` CLI pointed at them. Shared by the end-to-end loops.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { localS3Credentials } from "../../scripts/local-s3.mjs";
import { type DevServer, startWranglerDev } from "./wrangler_dev";

export const ROOT = path.join(import.meta.dirname, "../..");
const run = promisify(execFile);

/** A job's `promotion` (promote: "if_better"), as the end-to-end tests read it. */
export type Promotion = {
  candidate: { ref: string; linear: number | null };
  incumbent: { ref: string; linear: number | null } | null;
  promoted: boolean;
};

export type Platform = {
  server: DevServer;
  work: string;
  trainerLog: string[];
  /** Runs the CLI like a user would (cwd: a scratch folder); returns stdout. */
  cli: (...args: string[]) => Promise<string>;
  /** The CLI with `--json`, parsed. */
  cliJson: <T>(...args: string[]) => Promise<T>;
  stop: () => Promise<void>;
};

export async function startPlatform(prefix: string): Promise<Platform> {
  const work = mkdtempSync(path.join(tmpdir(), prefix));
  const server = await startWranglerDev(localS3Credentials());
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, "cli/bin.mjs"), ...args], {
      cwd: work,
      env: { ...process.env, SELFSUP_API_URL: server.url, SELFSUP_API_KEY: server.key },
      maxBuffer: 32 * 1024 * 1024,
      timeout: 300_000,
    });
    return stdout;
  };
  const cliJson = async <T>(...args: string[]) => JSON.parse(await cli(...args, "--json")) as T;
  const key = await cliJson<{ secret: string }>("keys", "create", "--name", "trainer", "--scopes", "trainer");
  const trainerLog: string[] = [];
  const trainer: ChildProcess = spawn(
    path.join(ROOT, "gpu-trainer/.venv/bin/python"),
    ["-m", "selfsup_trainer", "serve"],
    {
      cwd: path.join(ROOT, "gpu-trainer"),
      env: {
        ...process.env,
        SELFSUP_API_URL: server.url,
        SELFSUP_TRAINER_KEY: key.secret,
        SELFSUP_WORK_DIR: path.join(work, "trainer"),
        PYTHONUNBUFFERED: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  trainer.stdout?.on("data", (d) => trainerLog.push(String(d)));
  trainer.stderr?.on("data", (d) => trainerLog.push(String(d)));
  const stop = async () => {
    trainer.kill("SIGKILL");
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  };
  return { server, work, trainerLog, cli, cliJson, stop };
}
