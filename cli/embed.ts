// `selfsup embed`: text as arguments, `--image FILE...` (sent as base64) or `--series` (each
// argument a JSON array, or a .json file holding one). The model's modality decides what the API
// accepts; sending the wrong kind gets its 400 naming the modality.
import { existsSync, readFileSync } from "node:fs";
import { type SelfsupClient, unwrap } from "../client";

type Flags = Record<string, string | boolean | string[] | undefined>;
type Input = string | string[] | number[] | number[][] | number[][][];

export class EmbedUsageError extends Error {}

/** The `input` of the request from the command line's arguments. */
export function embedInput(args: string[], flags: Flags, command = "embed"): Input {
  if (args.length === 0) throw new EmbedUsageError(`${command} needs TEXT, --image FILE... or --series JSON...`);
  if (flags.image) {
    return args.map((file) => {
      if (!existsSync(file)) throw new EmbedUsageError(`--image ${file}: no such file`);
      return readFileSync(file).toString("base64");
    });
  }
  if (flags.series) {
    const series = args.map((arg) => {
      const text = arg.endsWith(".json") && existsSync(arg) ? readFileSync(arg, "utf8") : arg;
      try {
        return JSON.parse(text) as number[] | number[][];
      } catch {
        throw new EmbedUsageError(`--series ${arg.slice(0, 40)}: not a JSON array (e.g. "[0.1, 0.5, 0.3]")`);
      }
    });
    return series as number[][] | number[][][];
  }
  return args;
}

export async function embedCommand(client: SelfsupClient, model: string, args: string[], flags: Flags) {
  const input = embedInput(args, flags);
  // The generated type lists the input forms; a series batch of channel arrays is one of them.
  const body = { model, input } as Parameters<SelfsupClient["POST"]>[1] extends { body?: infer B } ? B : never;
  const r = await unwrap(client.POST("/v1/embeddings", { body: body as never }));
  const lines = r.data.map((d) => {
    const v = d.embedding as number[];
    return `${d.index}\t${v
      .slice(0, 6)
      .map((x) => x.toFixed(4))
      .join(" ")} … (${v.length} dims)`;
  });
  const unit = flags.image ? "pixels" : flags.series ? "points" : "tokens";
  return { response: r, human: `${lines.join("\n")}\nmodel ${r.model}, ${r.usage.total_tokens} ${unit}` };
}
