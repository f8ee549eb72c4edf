// `make dev` started from a script (a background job: SIGINT ignored) and stopped with SIGTERM to
// `make` must leave no wrangler, workerd, trainer or demo process behind (issue 14, item 8).
//
// It runs in a shadow checkout: a temp folder whose entries link to this repo's, except scripts/
// (copied, so dev.sh's `cd $(dirname $0)/..` lands in the shadow), wrangler.toml (copied: wrangler
// keeps .wrangler/ and reads .dev.vars next to its config) and the state dev.sh writes (.wrangler/,
// .selfsup/, .dev.vars), which therefore stay private to the test: a developer's running
// `make dev` and its database are not touched. PORT is a free port.
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "./wrangler_dev";

const ROOT = path.join(import.meta.dirname, "../..");
const PRIVATE = new Set([".selfsup", ".wrangler", ".dev.vars", "scripts", "wrangler.toml", ".git", "dist"]);

type Proc = { pid: number; ppid: number; cmd: string };

/** Every process on the machine, from /proc (pid, parent, command line). */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // The command name in (…) may hold spaces; the fields after its closing paren are fixed.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue; // a zombie has exited; only its parent's wait is missing
      const cmd = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      out.push({ pid: Number(name), ppid: Number(fields[1]), cmd });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

function descendants(root: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const p of all.filter((q) => q.ppid === parent)) {
      found.push(p);
      queue.push(p.pid);
    }
  }
  return found;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) Z /.test(safeStat(pid));
function safeStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return "";
  }
}

const shadow = mkdtempSync(path.join(tmpdir(), "selfsup-dev-"));
let make: ChildProcess | undefined;
let tracked: Proc[] = [];

let makeExited = false;

const kill = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
};

afterAll(() => {
  // Whatever the assertions said, leave nothing running and no shadow behind.
  for (const p of tracked) if (alive(p.pid)) kill(p.pid);
  if (make?.pid && !makeExited) kill(make.pid);
  rmSync(shadow, { recursive: true, force: true });
});

describe("make dev", () => {
  it("stops wrangler, workerd, the trainer and the demo when make gets SIGTERM", async () => {
    for (const name of readdirSync(ROOT)) {
      if (!PRIVATE.has(name)) symlinkSync(path.join(ROOT, name), path.join(shadow, name));
    }
    cpSync(path.join(ROOT, "scripts"), path.join(shadow, "scripts"), { recursive: true });
    cpSync(path.join(ROOT, "wrangler.toml"), path.join(shadow, "wrangler.toml"));
    const port = await freePort();

    // As a script's background job: SIGINT ignored (inherited by make and everything below it).
    make = spawn("bash", ["-c", `trap '' INT; exec make -s -C '${shadow}' dev`], {
      env: { ...process.env, PORT: String(port), WRANGLER_SEND_METRICS: "false" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let log = "";
    make.stdout?.on("data", (d) => {
      log += String(d);
    });
    make.stderr?.on("data", (d) => {
      log += String(d);
    });
    // `make dev` returning means everything it started has stopped: a caller may start it again
    // at once (same port, same state) or tear down the machine.
    const atExit: { left: Proc[] } = { left: [] };
    make.once("exit", () => {
      makeExited = true;
      atExit.left = tracked.filter((p) => alive(p.pid));
    });
    const makePid = make.pid as number;

    // Up: the banner names the PORT, and the trainer polls it.
    const upBy = Date.now() + 240_000;
    while (!(log.includes(`selfsup API     http://127.0.0.1:${port}`) && /\[trainer\] trainer .* polling/.test(log))) {
      if (makeExited) throw new Error(`make dev exited early:\n${log}`);
      if (Date.now() > upBy) throw new Error(`make dev did not come up in 240 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // The demo starts right after the banner.
    const demoBy = Date.now() + 30_000;
    while (!descendants(makePid).some((p) => p.cmd.includes("dev-demo.ts")) && Date.now() < demoBy) {
      await new Promise((r) => setTimeout(r, 250));
    }

    tracked = descendants(makePid);
    const kinds = (cmd: string) =>
      /workerd/.test(cmd)
        ? "workerd"
        : /wrangler/.test(cmd)
          ? "wrangler"
          : /selfsup_trainer serve/.test(cmd)
            ? "trainer"
            : /dev-demo\.ts/.test(cmd)
              ? "demo"
              : null;
    const seen = new Set(tracked.map((p) => kinds(p.cmd)).filter(Boolean));
    expect([...seen].sort()).toEqual(expect.arrayContaining(["trainer", "workerd", "wrangler"]));

    process.kill(makePid, "SIGTERM");

    // Bounded: the trainer gets up to 60 s to checkpoint, the rest 15 s.
    const by = Date.now() + 100_000;
    let left = tracked.filter((p) => alive(p.pid));
    while ((left.length > 0 || !makeExited) && Date.now() < by) {
      await new Promise((r) => setTimeout(r, 500));
      left = tracked.filter((p) => alive(p.pid));
    }
    expect(makeExited).toBe(true);
    expect(atExit.left.map((p) => `${p.pid} ${p.cmd}`)).toEqual([]);
    expect(left.map((p) => `${p.pid} ${p.cmd}`)).toEqual([]);
    // Nothing started after the snapshot either: no process still serves the port or runs from
    // the shadow checkout.
    const strays = processes().filter((p) => p.cmd.includes(`127.0.0.1:${port}`) || p.cmd.includes(shadow));
    expect(strays.map((p) => `${p.pid} ${p.cmd}`)).toEqual([]);
    expect(log).toContain("==> stopping");
    // The CLI finds the API of a `make dev` on another PORT through this file.
    expect(readFileSync(path.join(shadow, ".selfsup/dev-url"), "utf8").trim()).toBe(`http://127.0.0.1:${port}`);
  }, 400_000);
});
