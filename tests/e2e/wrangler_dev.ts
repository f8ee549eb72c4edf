// A real `wrangler dev` for end-to-end tests and the benchmark: a free port, its own --persist-to
// directory (migrated and seeded with one tenant and an admin key), stopped by process group.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const ROOT = path.join(import.meta.dirname, "../..");
const WRANGLER = path.join(ROOT, "node_modules/.bin/wrangler");

export type DevServer = { url: string; key: string; persistDir: string; log: () => string; stop(): Promise<void> };

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const token = (n: number) => {
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return Array.from(randomBytes(n), (b) => alphabet[b % 62]).join("");
};

function wrangler(args: string[], persistDir: string) {
  return execFileSync(WRANGLER, [...args, "--local", "--persist-to", persistDir], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Starts `wrangler dev` with `vars` (e.g. { EMBED_PRECISION: "fp32" }) and waits for /health. */
export async function startWranglerDev(vars: Record<string, string> = {}): Promise<DevServer> {
  const persistDir = mkdtempSync(path.join(tmpdir(), "selfsup-e2e-"));
  wrangler(["d1", "migrations", "apply", "DB"], persistDir);
  const tenantId = `tnt_${Date.now().toString(36)}${token(12)}`;
  const keyId = `key_${Date.now().toString(36)}${token(12)}`;
  const key = `ss_${token(8)}_${token(32)}`;
  const hash = createHash("sha256").update(key).digest("hex");
  wrangler(
    [
      "d1",
      "execute",
      "DB",
      "--command",
      `insert into tenants (id, name) values ('${tenantId}', 'e2e'); ` +
        `insert into api_keys (id, tenant_id, name, prefix, hash, scopes) values ('${keyId}', '${tenantId}', 'e2e admin', '${key.slice(0, 11)}', '${hash}', '["admin"]');`,
    ],
    persistDir,
  );
  const port = await freePort();
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistDir];
  args.push("--show-interactive-dev-session=false", "--inspector-port", String(await freePort()));
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child: ChildProcess = spawn(WRANGLER, args, {
    cwd: ROOT,
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    detached: true, // its own process group, so stop() takes workerd down with it
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((r) => child.once("exit", r));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      try {
        if (child.exitCode === null) process.kill(-child.pid, "SIGKILL");
      } catch {}
    }
    rmSync(persistDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer /health within 120 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, key, persistDir, log: () => output, stop };
}

/**
 * Registers an artifact folder (manifest.json + the files it lists) through the import route;
 * `only` keeps one precision variant (big encoders exceed the route's 100 MiB with both).
 */
export async function registerFolder(server: DevServer, name: string, dir: string, only?: "int8" | "fp32") {
  const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as {
    files: Record<string, unknown>;
    variants: Record<string, { model: string; data?: string }>;
  };
  if (only) {
    const keep = manifest.variants[only];
    if (!keep) throw new Error(`${dir} has no ${only} variant`);
    for (const [p, v] of Object.entries(manifest.variants)) {
      if (p === only) continue;
      delete manifest.variants[p];
      for (const f of [v.model, v.data]) if (f && f !== keep.model && f !== keep.data) delete manifest.files[f];
    }
  }
  const form = new FormData();
  form.append("manifest", JSON.stringify(manifest));
  for (const f of Object.keys(manifest.files)) {
    form.append("files", new Blob([readFileSync(path.join(dir, f))]), f);
  }
  const res = await fetch(`${server.url}/v1/models/${name}/versions`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.key}` },
    body: form,
  });
  if (res.status !== 201) throw new Error(`import of ${dir} failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; version: number; ref: string };
}
