// `selfsup classify`: labels with probabilities from a fine-tuned version, for the same input forms as
// `embed` (text arguments, `--image FILE...`, `--series JSON...`).
import { type SelfsupClient, unwrap } from "../client";
import { embedInput } from "./embed";

type Flags = Record<string, string | boolean | string[] | undefined>;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export async function classifyCommand(client: SelfsupClient, model: string, args: string[], flags: Flags) {
  const input = embedInput(args, flags, "classify");
  const topK = typeof flags["top-k"] === "string" ? Number(flags["top-k"]) : undefined;
  const r = await unwrap(
    client.POST("/v1/classifications", { body: { model, input, ...(topK !== undefined ? { top_k: topK } : {}) } }),
  );
  const what = (i: number) => {
    // Text: the start of the input, so the answer reads next to what was asked; files and series: the argument.
    const a = args[i] ?? "";
    return a.length > 40 ? `${a.slice(0, 39)}…` : a;
  };
  const lines = r.data.map(
    (d) =>
      `${d.index}\t${d.label}\t${pct(d.score)}\t${what(d.index)}\n\t  ${d.top.map((t) => `${t.label} ${pct(t.score)}`).join(", ")}`,
  );
  return { response: r, human: `${lines.join("\n")}\nmodel ${r.model}` };
}
