// The CLI's command table and argument parsing: each command lists the options it takes, an unknown
// option is refused (naming the closest known one), and `--help` after any command prints its usage.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { FinetuneHyperparameters } from "../api/contract";

export class UsageError extends Error {
  constructor(
    message: string,
    /** The usage to print after the message: the command's, or the whole help. */
    readonly usage?: string,
  ) {
    super(message);
  }
}

type OptionSpec = { type: "string" | "boolean"; multiple?: boolean; short?: string };

// Options whose type is not a plain string; every other option a command lists takes a value.
const TYPED: Record<string, OptionSpec> = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  api: { type: "string" },
  key: { type: "string" },
  watch: { type: "boolean" },
  image: { type: "boolean" },
  series: { type: "boolean" },
  set: { type: "string", multiple: true },
};

/** Options every command takes. */
const GLOBAL = ["json", "help", "api", "key"];

type Command = { usage: string; options: string[] };

/** The contract's FinetuneHyperparameters fields (api/contract.ts), each taken as `--kebab-case`. */
export const FINETUNE_HYPERPARAMETERS = Object.keys(FinetuneHyperparameters.shape) as (keyof FinetuneHyperparameters)[];

export const flagOf = (field: string) => field.replaceAll("_", "-");

export const COMMANDS: Record<string, Command> = {
  "datasets upload": {
    usage:
      "datasets upload FILE [--name N] [--purpose pretrain|probe] [--modality text|image|timeseries] [--format F]\n" +
      "      (modality and format guessed from the file name: .txt .jsonl .zip .tar .idx .csv, optionally .gz;\n" +
      '       a labeled text set for probes is .jsonl with one {"text": ..., "label": ...} per line)',
    options: ["name", "purpose", "modality", "format"],
  },
  "datasets list": { usage: "datasets list", options: [] },
  "datasets show": { usage: "datasets show ID", options: [] },
  "datasets delete": { usage: "datasets delete ID", options: [] },
  train: {
    usage:
      "train --dataset ID --objective OBJ --model NAME [--preset tiny] [--steps N] [--batch-size N] [--lr X]\n" +
      "      [--checkpoint-every N] [--max-tokens N] [--vocab-size N] [--set key=value]... [--eval-dataset ID] [--watch]\n" +
      "      [--init-from NAME@V] [--promote always|if_better]   (continue a version; move latest only if better)\n" +
      "      OBJ: text mlm|simcse|mlm+simcse|mlm+nsp · image simclr|mae · timeseries masked|temporal|contrastive",
    options: [
      "dataset",
      "objective",
      "model",
      "preset",
      "steps",
      "batch-size",
      "lr",
      "checkpoint-every",
      "max-tokens",
      "vocab-size",
      "set",
      "eval-dataset",
      "watch",
      "init-from",
      "promote",
    ],
  },
  finetune: {
    usage:
      "finetune --base NAME[@V] --dataset ID --model NAME [--eval-dataset ID] [--epochs N] [--steps N] [--batch-size N]\n" +
      "      [--lr X] [--head-lr X] [--head-init probe|zero] [--layer-decay X] [--freeze-layers N] [--label-smoothing X] [--weight-decay X]\n" +
      "      [--warmup-ratio X] [--dropout X] [--early-stopping-patience N] [--eval-every N] [--validation-split X]\n" +
      "      [--checkpoint-every N] [--seed N] [--max-tokens N] [--set key=value]... [--promote always|if_better] [--watch]\n" +
      "      (a labeled dataset, purpose probe; the new version of --model serves classify and embed)",
    options: [
      "base",
      "dataset",
      "model",
      "eval-dataset",
      ...FINETUNE_HYPERPARAMETERS.map(flagOf),
      "set",
      "promote",
      "watch",
    ],
  },
  "jobs list": { usage: "jobs list   (pretraining and fine-tune jobs)", options: [] },
  "jobs show": { usage: "jobs show ID [--watch]", options: ["watch"] },
  "jobs watch": { usage: "jobs watch ID", options: [] },
  "jobs cancel": { usage: "jobs cancel ID", options: [] },
  embed: {
    usage: "embed --model REF TEXT... | --image FILE... | --series JSON...",
    options: ["model", "image", "series"],
  },
  classify: {
    usage: "classify --model REF TEXT... | --image FILE... | --series JSON... [--top-k N]   (a fine-tuned version)",
    options: ["model", "image", "series", "top-k"],
  },
  probe: {
    usage: "probe --model REF --dataset ID [--kind linear|knn|mlp] [--split 0.2] [--seed N]",
    options: ["model", "dataset", "kind", "split", "seed"],
  },
  evaluate: {
    usage:
      "evaluate --dataset ID REF... [--kinds linear,knn,mlp] [--split 0.2] [--seed N]\n" +
      "      (default kinds linear,knn; a fine-tuned REF also gets a row for its head)",
    options: ["dataset", "kinds", "split", "seed"],
  },
  "models list": { usage: "models list", options: [] },
  "models show": { usage: "models show NAME", options: [] },
  "models alias": { usage: "models alias NAME ALIAS VERSION [--reason TEXT]", options: ["reason"] },
  "models history": { usage: "models history NAME ALIAS", options: [] },
  "keys create": { usage: "keys create --name N --scopes embed,train", options: ["name", "scopes"] },
  "keys list": { usage: "keys list", options: [] },
  "keys revoke": { usage: "keys revoke ID", options: [] },
};

// From the command table, so an option a command lists is always one the parser knows.
const OPTIONS: Record<string, OptionSpec> = {
  ...Object.fromEntries(
    Object.values(COMMANDS).flatMap((c) => c.options.map((o): [string, OptionSpec] => [o, { type: "string" }])),
  ),
  ...TYPED,
};

const GLOBAL_USAGE = `Options: --json (machine-readable output), --api URL, --key KEY, -h/--help
API: --api, else $SELFSUP_API_URL, else .selfsup/dev-url (written by \`make dev\`), else http://127.0.0.1:8787
Key: --key, else $SELFSUP_API_KEY, else .selfsup/dev-key`;

export const HELP = `selfsup — self-supervised pretraining, embeddings and probes

Usage: selfsup <command> [options]      (selfsup <command> --help: that command's options)

${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join("\n")}

${GLOBAL_USAGE}`;

/** Usage of the commands under `group` (e.g. all of `datasets`), or of one command. */
export function usageOf(names: string[]): string {
  const lines = names.map((n) => `  selfsup ${(COMMANDS[n] as Command).usage}`);
  return `Usage:\n${lines.join("\n")}\n\n${GLOBAL_USAGE}`;
}

/** Damerau-free edit distance, enough to catch typos like --stpes. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j] as number;
      row[j] = next;
    }
  }
  return row[b.length] as number;
}

/** The closest of `candidates` to `word`, when it is close enough to be a typo of it. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export type Values = Record<string, string | boolean | string[] | undefined>;
export type Parsed = { command: string; positionals: string[]; values: Values; help: boolean };

/**
 * Splits argv into the command (`datasets upload`, `train`, …), its positionals and options.
 *
 * @throws UsageError an unknown command or option (naming the closest known one), an option the
 *   command does not take, or a string option without its value.
 */
export function parseCommandLine(argv: string[]): Parsed {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: OPTIONS,
  });
  const [group, action] = positionals;
  const help = Boolean(values.help);
  if (!group) return { command: "", positionals: [], values, help: true };
  const single = COMMANDS[group] ? group : undefined;
  const pair = action !== undefined && COMMANDS[`${group} ${action}`] ? `${group} ${action}` : undefined;
  const command = single ?? pair;
  if (!command) {
    const inGroup = Object.keys(COMMANDS).filter((c) => c.startsWith(`${group} `));
    if (inGroup.length > 0 && (help || action === undefined)) {
      if (help) return { command: group, positionals: [], values, help: true };
      throw new UsageError(`${group}: which one? ${inGroup.join(" | ")}`, usageOf(inGroup));
    }
    // A typo in the group (`modles list`) or in the action (`jobs shwo`): match word by word.
    const words = [group, action ?? ""];
    const guess = Object.keys(COMMANDS).find((c) => {
      const [g, a] = c.split(" ");
      const groupOk = g === group || closest(group, [g as string]) !== undefined;
      return groupOk && (a === undefined || a === words[1] || closest(words[1] as string, [a]) !== undefined);
    });
    const tried = guess?.includes(" ") || inGroup.length > 0 ? [group, action].filter(Boolean).join(" ") : group;
    throw new UsageError(`unknown command: ${tried}${guess ? ` (did you mean \`${guess}\`?)` : ""}`, HELP);
  }
  const allowed = new Set([...GLOBAL, ...(COMMANDS[command] as Command).options]);
  const usage = usageOf([command]);
  for (const t of tokens ?? []) {
    if (t.kind !== "option") continue;
    if (!(t.name in OPTIONS) || !allowed.has(t.name)) {
      const known = t.name in OPTIONS;
      const guess = known ? undefined : closest(t.name, [...allowed]);
      const why = known ? `\`${command}\` does not take ${t.rawName}` : `unknown option ${t.rawName}`;
      throw new UsageError(`${why}${guess ? ` (did you mean --${guess}?)` : ""}`, usage);
    }
    const spec = OPTIONS[t.name] as OptionSpec;
    if (spec.type === "string" && (t.value === undefined || t.value === "")) {
      throw new UsageError(`${t.rawName} needs a value`, usage);
    }
  }
  const rest = positionals.slice(command.split(" ").length);
  return { command, positionals: rest, values, help };
}

export type ApiTarget = { url: string; source: string };

/** Where the CLI sends requests, and where that came from (printed with connection errors). */
export function apiTarget(values: Values, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ApiTarget {
  if (typeof values.api === "string") return { url: values.api, source: "--api" };
  if (env.SELFSUP_API_URL) return { url: env.SELFSUP_API_URL, source: "SELFSUP_API_URL" };
  const devUrl = path.join(cwd, ".selfsup/dev-url");
  if (existsSync(devUrl)) {
    const url = readFileSync(devUrl, "utf8").trim();
    if (url) return { url, source: ".selfsup/dev-url, written by `make dev`" };
  }
  return { url: "http://127.0.0.1:8787", source: "the default; set SELFSUP_API_URL or pass --api" };
}

/** Throughput with its unit: the trainer reports units per second, which are tokens, images or points. */
export function throughput(modality: string, perSecond: number): string {
  const unit = modality === "image" ? "img/s" : modality === "timeseries" ? "points/s" : "tok/s";
  const n = perSecond >= 100 ? Math.round(perSecond).toString() : perSecond.toFixed(1);
  return `${n} ${unit}`;
}
