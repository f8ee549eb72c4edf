// The labeled quotes of tests/fixtures/probe/fortunes.json (Debian fortunes, 4 categories) as a
// probe-set .jsonl (`{"text", "label"}` per line): the demo and the end-to-end test upload it.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export function writeFortunesJsonl(file: string): { labels: string[]; records: number } {
  const src = path.join(import.meta.dirname, "../tests/fixtures/probe/fortunes.json");
  const f = JSON.parse(readFileSync(src, "utf8")) as { texts: string[]; labels: number[]; label_names: string[] };
  const rows = f.texts.map((text, i) => JSON.stringify({ text, label: f.label_names[f.labels[i] as number] }));
  writeFileSync(file, rows.join("\n"));
  return { labels: [...f.label_names], records: rows.length };
}
