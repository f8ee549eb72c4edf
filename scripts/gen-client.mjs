// Generates client/openapi.json and client/schema.ts (types in openapi-typescript's `paths` shape,
// which openapi-fetch consumes) from the live spec of a throwaway `wrangler dev`.
// Usage: node scripts/gen-client.mjs [--check]   (--check fails when the committed files are stale)
// Why our own generator: openapi-typescript needs TypeScript 5's compiler API, we build with 7.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function fetchSpec() {
  const port = await freePort();
  const persist = mkdtempSync(path.join(tmpdir(), "selfsup-spec-"));
  const dev = spawn(
    "wrangler",
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--persist-to",
      persist,
      "--show-interactive-dev-session=false",
    ],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    },
  );
  try {
    for (let i = 0; i < 120; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/openapi.json`);
        if (res.ok) return await res.json();
      } catch {}
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error("wrangler dev did not serve /openapi.json within 60 s");
  } finally {
    dev.kill("SIGTERM");
    rmSync(persist, { recursive: true, force: true });
  }
}

const ident = (s) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s) ? s : JSON.stringify(s));

function tsType(schema, depth = 0) {
  if (!schema || Object.keys(schema).length === 0) return "unknown";
  if (schema.$ref) return `components["schemas"][${JSON.stringify(schema.$ref.split("/").pop())}]`;
  const pad = "  ".repeat(depth + 1);
  const end = "  ".repeat(depth);
  let t;
  if (schema.anyOf || schema.oneOf) t = (schema.anyOf ?? schema.oneOf).map((s) => tsType(s, depth)).join(" | ");
  else if (schema.allOf) t = schema.allOf.map((s) => tsType(s, depth)).join(" & ");
  else if (schema.const !== undefined) t = JSON.stringify(schema.const);
  else if (schema.enum) t = schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  else {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    t = types
      .map((type) => {
        switch (type) {
          case "string":
            return schema.format === "binary" ? "Blob" : "string";
          case "integer":
          case "number":
            return "number";
          case "boolean":
            return "boolean";
          case "null":
            return "null";
          case "array":
            return `(${tsType(schema.items, depth)})[]`;
          case "object":
          case undefined: {
            const props = schema.properties ?? {};
            const req = new Set(schema.required ?? []);
            const lines = Object.entries(props).map(
              ([k, v]) => `${pad}${ident(k)}${req.has(k) ? "" : "?"}: ${tsType(v, depth + 1)};`,
            );
            const extra = schema.additionalProperties;
            if (extra && extra !== false)
              lines.push(`${pad}[key: string]: ${extra === true ? "unknown" : tsType(extra, depth + 1)};`);
            if (lines.length === 0) return type === "object" ? "Record<string, unknown>" : "unknown";
            return `{\n${lines.join("\n")}\n${end}}`;
          }
          default:
            return "unknown";
        }
      })
      .join(" | ");
  }
  return schema.nullable ? `${t} | null` : t;
}

function content(c, depth) {
  const pad = "  ".repeat(depth + 1);
  return `{\n${Object.entries(c ?? {})
    .map(([mt, v]) => `${pad}${JSON.stringify(mt)}: ${tsType(v.schema, depth + 1)};`)
    .join("\n")}\n${"  ".repeat(depth)}}`;
}

function operation(op, depth) {
  const pad = "  ".repeat(depth + 1);
  const params = { query: [], path: [], header: [] };
  for (const p of op.parameters ?? []) params[p.in]?.push(p);
  const paramLines = Object.entries(params).map(([where, ps]) =>
    ps.length === 0
      ? `${pad}  ${where}?: never;`
      : `${pad}  ${where}${where === "path" || ps.some((p) => p.required) ? "" : "?"}: {\n${ps
          .map((p) => `${pad}    ${ident(p.name)}${p.required ? "" : "?"}: ${tsType(p.schema, depth + 3)};`)
          .join("\n")}\n${pad}  };`,
  );
  const body = op.requestBody
    ? `${pad}requestBody${op.requestBody.required ? "" : "?"}: {\n${pad}  content: ${content(op.requestBody.content, depth + 2)};\n${pad}};`
    : `${pad}requestBody?: never;`;
  const responses = Object.entries(op.responses ?? {})
    .map(
      ([code, r]) =>
        `${pad}  ${code}: {\n${pad}    headers: { [name: string]: unknown };\n${pad}    content${r.content ? "" : "?"}: ${r.content ? content(r.content, depth + 3) : "never"};\n${pad}  };`,
    )
    .join("\n");
  return `{\n${pad}parameters: {\n${paramLines.join("\n")}\n${pad}};\n${body}\n${pad}responses: {\n${responses}\n${pad}};\n${"  ".repeat(depth)}}`;
}

function generate(spec) {
  const out = [
    "// Generated by scripts/gen-client.mjs from GET /openapi.json. Do not edit.",
    "",
    "export interface paths {",
  ];
  for (const [p, item] of Object.entries(spec.paths)) {
    out.push(`  ${JSON.stringify(p)}: {`);
    for (const m of ["get", "put", "post", "delete", "patch"]) {
      out.push(item[m] ? `    ${m}: ${operation(item[m], 2)};` : `    ${m}?: never;`);
    }
    out.push("  };");
  }
  out.push("}", "", "export interface components {", "  schemas: {");
  for (const [name, s] of Object.entries(spec.components?.schemas ?? {}))
    out.push(`    ${ident(name)}: ${tsType(s, 2)};`);
  out.push("  };", "}", "");
  return out.join("\n");
}

const spec = await fetchSpec();
const files = {
  "client/openapi.json": `${JSON.stringify(spec, null, 2)}\n`,
  "client/schema.ts": generate(spec),
};
if (process.argv.includes("--check")) {
  const stale = Object.entries(files).filter(([f, text]) => {
    try {
      return readFileSync(path.join(root, f), "utf8") !== text;
    } catch {
      return true;
    }
  });
  if (stale.length > 0) {
    console.error(`stale: ${stale.map(([f]) => f).join(", ")}; run npm run client:generate and commit the result`);
    process.exit(1);
  }
  console.log("client is up to date with the API spec");
} else {
  for (const [f, text] of Object.entries(files)) writeFileSync(path.join(root, f), text);
  console.log(`wrote ${Object.keys(files).join(", ")} (${Object.keys(spec.paths).length} paths)`);
}
