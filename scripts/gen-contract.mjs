// Writes gpu-trainer/selfsup_trainer/contract.json from api/contract.ts (the one definition of the
// facts the API and the trainer share). Usage: node scripts/gen-contract.mjs [--check]
// (--check fails when the committed file is stale). tsx runs the TypeScript in-process.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tsImport } from "tsx/esm/api";

const root = path.resolve(import.meta.dirname, "..");
const file = "gpu-trainer/selfsup_trainer/contract.json";

/** JSON with two-space indents, but arrays of plain values on one line (easier to read and diff). */
function render(value, indent = "") {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object"))
      return `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
    return `[\n${value.map((v) => inner + render(v, inner)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return "{}";
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${render(v, inner)}`).join(",\n")}\n${indent}}`;
}

const { contractJson } = await tsImport("../api/contract.ts", import.meta.url);
const text = `${render(contractJson())}\n`;
if (process.argv.includes("--check")) {
  let committed = null;
  try {
    committed = readFileSync(path.join(root, file), "utf8");
  } catch {}
  if (committed !== text) {
    console.error(`stale: ${file}; run npm run contract:generate and commit the result`);
    process.exit(1);
  }
  console.log(`${file} is up to date with api/contract.ts`);
} else {
  writeFileSync(path.join(root, file), text);
  console.log(`wrote ${file}`);
}
