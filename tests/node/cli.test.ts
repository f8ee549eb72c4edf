// The CLI as a newcomer meets it: typos in options are refused with the close match, every command
// has --help, the API URL comes from `make dev`'s .selfsup/dev-url when SELFSUP_API_URL is unset,
// errors name the URL they called, and --watch shows units per modality.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { apiTarget, COMMANDS, parseCommandLine, throughput } from "../../cli/args";

const ROOT = path.join(import.meta.dirname, "../..");
const run = promisify(execFile);
const work = mkdtempSync(path.join(tmpdir(), "selfsup-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the real CLI (node cli/bin.mjs) in `cwd`; resolves with exit code and output. */
async function cli(args: string[], cwd = work, env: Record<string, string> = {}) {
  const baseEnv = { ...process.env, ...env };
  delete baseEnv.SELFSUP_API_URL;
  if (!env.SELFSUP_API_KEY) delete baseEnv.SELFSUP_API_KEY;
  Object.assign(baseEnv, env);
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, "cli/bin.mjs"), ...args], {
      cwd,
      env: baseEnv,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

describe("options", () => {
  it("an unknown option is refused, naming the close match", () => {
    expect(() => parseCommandLine(["train", "--dataset", "ds_1", "--stpes", "300"])).toThrow(
      /unknown option --stpes \(did you mean --steps\?\)/,
    );
    expect(() => parseCommandLine(["datasets", "upload", "a.txt", "--purpse", "probe"])).toThrow(/--purpose/);
    expect(() => parseCommandLine(["jobs", "list", "--frobnicate"])).toThrow(/unknown option --frobnicate$/);
  });

  it("an option of another command is refused, and a string option needs its value", () => {
    expect(() => parseCommandLine(["datasets", "list", "--watch"])).toThrow(/`datasets list` does not take --watch/);
    expect(() => parseCommandLine(["train", "--dataset"])).toThrow(/--dataset needs a value/);
  });

  it("an unknown command names the close one", () => {
    expect(() => parseCommandLine(["modles", "list"])).toThrow(/did you mean `models list`/);
    expect(() => parseCommandLine(["jobs", "shwo", "job_1"])).toThrow(/did you mean `jobs show`/);
  });

  it("what the commands take still parses", () => {
    const p = parseCommandLine([
      "train",
      "--dataset",
      "ds_1",
      "--objective",
      "mlm",
      "--model",
      "m",
      "--steps",
      "30",
      "--set",
      "image_size=16",
      "--set",
      "lr=0.001",
      "--watch",
      "--json",
    ]);
    expect(p.command).toBe("train");
    expect(p.values).toMatchObject({ dataset: "ds_1", steps: "30", set: ["image_size=16", "lr=0.001"], watch: true });
    expect(parseCommandLine(["jobs", "show", "job_1", "--watch"])).toMatchObject({
      command: "jobs show",
      positionals: ["job_1"],
      values: { watch: true },
    });
    expect(parseCommandLine(["embed", "--model", "demo", "a b", "c"]).positionals).toEqual(["a b", "c"]);
  });

  it("every option a command lists parses with its value (--init-from, --promote were refused as unknown)", () => {
    const p = parseCommandLine(["train", "--dataset", "ds_1", "--init-from", "tiny@1", "--promote", "if_better"]);
    expect(p.values).toMatchObject({ "init-from": "tiny@1", promote: "if_better" });
    for (const [name, c] of Object.entries(COMMANDS)) {
      for (const o of c.options.filter((o) => !["watch", "image", "series", "set"].includes(o))) {
        const q = parseCommandLine([...name.split(" "), `--${o}`, "v"]);
        expect(q.values[o], `${name} --${o}`).toBe("v");
      }
    }
  });

  it("every command has --help, printing its usage without needing a key or an API", async () => {
    for (const name of Object.keys(COMMANDS)) {
      const p = parseCommandLine([...name.split(" "), "--help"]);
      expect(p.help, name).toBe(true);
      expect(p.command).toBe(name);
    }
    const train = await cli(["train", "--help"]);
    expect(train.code).toBe(0);
    expect(train.stdout).toContain("selfsup train --dataset ID");
    expect(train.stdout).toContain("--checkpoint-every");
    const jobs = await cli(["jobs", "-h"]);
    expect(jobs.stdout).toContain("jobs show ID [--watch]");
    const typo = await cli(["train", "--stpes", "3"]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain("did you mean --steps?");
    expect(typo.stderr).toContain("selfsup train --dataset ID");
  });
});

describe("the API URL", () => {
  it("--api, else SELFSUP_API_URL, else .selfsup/dev-url, else 8787", () => {
    const dir = mkdtempSync(path.join(work, "t-"));
    expect(apiTarget({}, {}, dir).url).toBe("http://127.0.0.1:8787");
    mkdirSync(path.join(dir, ".selfsup"));
    writeFileSync(path.join(dir, ".selfsup/dev-url"), "http://127.0.0.1:9123\n");
    expect(apiTarget({}, {}, dir)).toMatchObject({
      url: "http://127.0.0.1:9123",
      source: expect.stringMatching(/dev-url/),
    });
    expect(apiTarget({}, { SELFSUP_API_URL: "http://a:1" }, dir)).toMatchObject({ url: "http://a:1" });
    expect(apiTarget({ api: "http://b:2" }, { SELFSUP_API_URL: "http://a:1" }, dir).url).toBe("http://b:2");
  });

  it("the CLI calls the URL make dev wrote, and its error names that URL and where it came from", async () => {
    const dir = mkdtempSync(path.join(work, "dev-"));
    const port = await deadPort();
    mkdirSync(path.join(dir, ".selfsup"));
    writeFileSync(path.join(dir, ".selfsup/dev-url"), `http://127.0.0.1:${port}\n`);
    writeFileSync(path.join(dir, ".selfsup/dev-key"), "ss_abcdefgh_0123456789abcdefghijklmnopqrstuv\n");
    const r = await cli(["models", "list"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach the API at http://127.0.0.1:${port} (from .selfsup/dev-url`);
    expect(r.stderr).toContain("ECONNREFUSED");
  });
});

describe("--watch", () => {
  it("names the throughput unit of the job's modality", () => {
    expect(throughput("text", 1234.4)).toBe("1234 tok/s");
    expect(throughput("image", 87.25)).toBe("87.3 img/s");
    expect(throughput("timeseries", 5000)).toBe("5000 points/s");
  });
});
