// The `selfsup` CLI: `npx selfsup <command>` or `npm run cli -- <command>`. Human output by default,
// `--json` for scripts; API errors print the problem detail and exit 1.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createSelfsupClient, SelfsupError, unwrap } from "../client";
import { type ApiTarget, apiTarget, COMMANDS, HELP, parseCommandLine, UsageError, usageOf } from "./args";
import { classifyCommand } from "./classify";
import { type Ctx, need, out } from "./context";
import { EmbedUsageError, embedCommand } from "./embed";
import { createFinetuneJob } from "./finetune";
import { table } from "./format";
import { cancelJob, getJob, type Job, jobSummary, listJobs } from "./jobs";
import { runProbeCommands } from "./probes";
import { uploadDataset } from "./upload";
import { causeOf, watchJob } from "./watch";

/** The API this invocation talks to, for error messages. */
let called: ApiTarget | null = null;
/** The command being run, so that a missing argument prints that command's usage. */
let running = "";

async function run(argv: string[]) {
  const { command, positionals: rest, values, help } = parseCommandLine(argv);
  running = command;
  if (help) {
    const names = COMMANDS[command] ? [command] : Object.keys(COMMANDS).filter((c) => c.startsWith(`${command} `));
    process.stdout.write(`${names.length > 0 ? usageOf(names) : HELP}\n`);
    return;
  }
  const target = apiTarget(values);
  const baseUrl = target.url;
  const keyFile = path.resolve(".selfsup/dev-key");
  const apiKey =
    (typeof values.key === "string" ? values.key : process.env.SELFSUP_API_KEY) ??
    (existsSync(keyFile) ? readFileSync(keyFile, "utf8").trim() : "");
  if (!apiKey) throw new UsageError("no API key: set SELFSUP_API_KEY, pass --key, or run `make dev` once");
  called = target;
  const ctx: Ctx = {
    client: createSelfsupClient({ baseUrl, apiKey }),
    baseUrl,
    target,
    json: Boolean(values.json),
    flags: values,
  };
  const c = ctx.client;

  switch (command) {
    case "datasets upload": {
      const file = rest[0];
      if (!file) throw new UsageError("datasets upload needs a FILE");
      const purpose = (values.purpose as "pretrain" | "probe" | undefined) ?? "pretrain";
      const d = await uploadDataset(c, baseUrl, file, {
        name: values.name as string | undefined,
        purpose,
        format: values.format as string | undefined,
        modality: values.modality as "text" | "image" | "timeseries" | undefined,
        stateDir: path.resolve(".selfsup"),
      });
      return out(ctx, d, () => `${d.id} ${d.status}\n${table([d.stats ?? {}])}`);
    }
    case "datasets list": {
      const r = await unwrap(c.GET("/v1/datasets"));
      return out(ctx, r, () =>
        table(
          r.data.map((d) => ({
            id: d.id,
            name: d.name,
            purpose: d.purpose,
            format: d.format,
            bytes: d.bytes,
            status: d.status,
            records: (d.stats as { records?: number } | null)?.records,
          })),
        ),
      );
    }
    case "datasets show": {
      const d = await unwrap(c.GET("/v1/datasets/{id}", { params: { path: { id: need1(rest) } } }));
      return out(
        ctx,
        d,
        () =>
          `${table([{ id: d.id, name: d.name, status: d.status, bytes: d.bytes }])}\n\n${table([d.stats ?? {}])}${d.errors ? `\n\nerrors:\n${d.errors.map((e) => `  ${e.line ? `line ${e.line}: ` : ""}${e.message}`).join("\n")}` : ""}`,
      );
    }
    case "datasets delete": {
      const d = await unwrap(c.DELETE("/v1/datasets/{id}", { params: { path: { id: need1(rest) } } }));
      return out(ctx, d, () => `deleted ${d.id}`);
    }
    case "train": {
      const hp: Record<string, number | string> = {};
      for (const [flag, key] of [
        ["steps", "steps"],
        ["batch-size", "batch_size"],
        ["lr", "lr"],
        ["checkpoint-every", "checkpoint_every"],
        ["max-tokens", "max_tokens"],
        ["vocab-size", "vocab_size"],
      ] as const) {
        if (typeof values[flag] === "string") hp[key] = Number(values[flag]);
      }
      Object.assign(hp, parseSets(values.set));
      const evalDataset = values["eval-dataset"];
      const job = await unwrap(
        c.POST("/v1/pretraining/jobs", {
          body: {
            dataset: need(ctx, "dataset"),
            objective: need(ctx, "objective"),
            model: need(ctx, "model"),
            preset: ((values.preset as string | undefined) ?? "tiny") as "tiny",
            hyperparameters: hp,
            ...(typeof evalDataset === "string" ? { eval: { dataset: evalDataset } } : {}),
            ...(typeof values["init-from"] === "string" ? { init_from: values["init-from"] } : {}),
            ...(typeof values.promote === "string" ? { promote: values.promote as "if_better" } : {}),
            max_attempts: 3,
          },
        }),
      );
      return queued(ctx, job);
    }
    case "finetune":
      return queued(ctx, await createFinetuneJob(ctx, parseSets(values.set)));
    case "jobs list": {
      const r = await listJobs(ctx);
      return out(ctx, r, () => table(r.data.map(jobSummary)));
    }
    case "jobs show": {
      if (values.watch) {
        const w = await watchJob(ctx, need1(rest));
        if (w.status !== "succeeded") process.exitCode = 1;
        return out(ctx, w, () => table([jobSummary(w)]));
      }
      const j = await getJob(ctx, need1(rest));
      const curve = j.lossCurve
        .slice(-10)
        .map((p) => `  step ${p.step}: loss ${p.loss?.toFixed(4)}`)
        .join("\n");
      return out(ctx, j, () => `${table([jobSummary(j)])}\n\nlast losses:\n${curve || "  (none yet)"}`);
    }
    case "jobs watch": {
      const j = await watchJob(ctx, need1(rest));
      return out(ctx, j, () => table([jobSummary(j)]));
    }
    case "jobs cancel": {
      const j = await cancelJob(ctx, need1(rest));
      return out(ctx, j, () => `${j.id} ${j.status}${j.status === "running" ? " (stops at its next heartbeat)" : ""}`);
    }
    case "embed": {
      const r = await embedCommand(c, need(ctx, "model"), rest, values);
      return out(ctx, r.response, () => r.human);
    }
    case "classify": {
      const r = await classifyCommand(c, need(ctx, "model"), rest, values);
      return out(ctx, r.response, () => r.human);
    }
    case "models list": {
      const r = await unwrap(c.GET("/v1/models"));
      return out(ctx, r, () =>
        table(
          r.data.map((m) => ({
            name: m.id,
            modality: m.modality,
            versions: m.versions,
            aliases: Object.entries(m.aliases)
              .map(([a, v]) => `${a}=${v}`)
              .join(" "),
          })),
        ),
      );
    }
    case "models show": {
      const m = await unwrap(c.GET("/v1/models/{name}", { params: { path: { name: need1(rest) } } }));
      return out(ctx, m, () =>
        table(
          m.data.map((v) => ({
            ref: v.ref,
            dims: v.dims,
            source: v.source,
            ...lineage(v),
            aliases: v.aliases.join(" "),
            created: v.createdAt,
          })),
        ),
      );
    }
    case "models alias": {
      const [name, alias, version] = rest;
      if (!name || !alias || !version) throw new UsageError("models alias NAME ALIAS VERSION");
      const v = await unwrap(
        c.PUT("/v1/models/{name}/aliases/{alias}", {
          params: { path: { name, alias } },
          body: { version: Number(version), reason: values.reason as string | undefined },
        }),
      );
      return out(ctx, v, () => `${name}@${alias} -> ${v.ref}`);
    }
    case "models history": {
      const [name, alias] = rest;
      if (!name || !alias) throw new UsageError("models history NAME ALIAS");
      const h = await unwrap(c.GET("/v1/models/{name}/aliases/{alias}/history", { params: { path: { name, alias } } }));
      return out(ctx, h, () =>
        table(
          h.data.map((e) => ({
            at: e.createdAt,
            from: e.from ?? "",
            to: e.to,
            by: e.actorKeyId ?? "system",
            reason: e.reason ?? "",
          })),
        ),
      );
    }
    case "keys create": {
      const scopes = need(ctx, "scopes").split(",") as ("embed" | "train")[];
      const k = await unwrap(c.POST("/v1/keys", { body: { name: need(ctx, "name"), scopes } }));
      return out(ctx, k, () => `${k.secret}\n(shown once; id ${k.id}, scopes ${k.scopes.join(",")})`);
    }
    case "keys list": {
      const r = await unwrap(c.GET("/v1/keys"));
      return out(ctx, r, () =>
        table(
          r.data.map((k) => ({
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.join(","),
            lastUsed: k.lastUsedAt ?? "",
            revoked: k.revokedAt ?? "",
          })),
        ),
      );
    }
    case "keys revoke": {
      const k = await unwrap(c.DELETE("/v1/keys/{id}", { params: { path: { id: need1(rest) } } }));
      return out(ctx, k, () => `revoked ${k.id}`);
    }
    case "probe":
    case "evaluate":
      return runProbeCommands(ctx, command, rest);
    default:
      throw new UsageError(`unknown command: ${command}`, HELP);
  }
}

/** Prints the queued job's id, follows it with `--watch` (exit 1 unless it succeeds), then its summary. */
async function queued(ctx: Ctx, job: Job) {
  process.stderr.write(`queued ${job.id}\n`);
  const final = ctx.flags.watch ? await watchJob(ctx, job.id) : job;
  if (ctx.flags.watch && final.status !== "succeeded") process.exitCode = 1;
  return out(ctx, final, () => table([jobSummary(final)]));
}

/** Where a version came from and, when fine-tuned, how many labels its head answers with. */
function lineage(v: { initFrom: string | null }) {
  // finetunedFrom and head are read loosely so this works against a server from before they existed.
  const ft = v as { finetunedFrom?: string | null; head?: { labels: string[] } | null };
  return {
    from: ft.finetunedFrom ? `${ft.finetunedFrom} (fine-tuned)` : (v.initFrom ?? ""),
    labels: ft.head ? ft.head.labels.length : "",
  };
}

/** `--set key=value` pairs for hyperparameters: numbers stay numbers, anything else is a string. */
function parseSets(sets: unknown): Record<string, number | string> {
  const hp: Record<string, number | string> = {};
  for (const s of Array.isArray(sets) ? (sets as string[]) : []) {
    const i = s.indexOf("=");
    if (i < 1) throw new UsageError(`--set ${s}: use key=value, e.g. --set image_size=16`);
    const raw = s.slice(i + 1);
    hp[s.slice(0, i)] = raw !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return hp;
}

function need1(rest: string[]): string {
  if (!rest[0]) throw new UsageError("an ID or NAME is required");
  return rest[0];
}

export async function main(argv = process.argv.slice(2)) {
  try {
    await run(argv);
  } catch (e) {
    const api = called ? `${called.url} (from ${called.source})` : "";
    if (e instanceof SelfsupError) {
      process.stderr.write(`error ${e.status} from ${api}: ${e.message}\n`);
      for (const fe of e.problem?.errors ?? []) process.stderr.write(`  ${fe.path}: ${fe.message}\n`);
      if (e.problem?.requestId) process.stderr.write(`  (request id ${e.problem.requestId})\n`);
      if (e.status === 401) {
        process.stderr.write(
          "  this API does not know the key; if `make dev` runs on another PORT, the CLI may be calling another\n" +
            "  server: set SELFSUP_API_URL (make dev writes its URL to .selfsup/dev-url), or pass --api/--key\n",
        );
      }
    } else if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n\n${e.usage ?? (COMMANDS[running] ? usageOf([running]) : HELP)}\n`);
    } else if (e instanceof EmbedUsageError) {
      process.stderr.write(`${e.message}\n\n${usageOf([running === "classify" ? "classify" : "embed"])}\n`);
    } else if (called && e instanceof TypeError) {
      // fetch failed: nothing listens there (make dev not running, or on another PORT).
      process.stderr.write(
        `error: cannot reach the API at ${api}: ${causeOf(e)}\n` +
          "  is `make dev` running? It prints its URL and writes it to .selfsup/dev-url.\n",
      );
    } else {
      process.stderr.write(`error: ${(e as Error).message}${api ? ` (API ${api})` : ""}\n`);
    }
    process.exitCode = 1;
  }
}
