// Builds the dashboard (issue 16): dashboard/src/main.ts → dashboard/dist/dashboard/{app.js, app.css}
// with esbuild (CSS imports are bundled into app.css), plus index.html. Workers static assets serve
// dashboard/dist (wrangler.toml [assets]), so the app lives at /dashboard/ beside the API.
// Usage: node scripts/build-dashboard.mjs [--watch]
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const src = path.join(root, "dashboard/src");
export const OUT_DIR = path.join(root, "dashboard/dist/dashboard");

/** @type {import("esbuild").BuildOptions} */
const options = {
  entryPoints: { app: path.join(src, "main.ts") },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: "linked",
  outdir: OUT_DIR,
  logLevel: "warning",
  legalComments: "none",
};

export async function buildDashboard() {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  await esbuild.build(options);
  copyFileSync(path.join(root, "dashboard/index.html"), path.join(OUT_DIR, "index.html"));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  await buildDashboard();
  console.log(`dashboard built in ${Date.now() - started} ms → ${path.relative(root, OUT_DIR)}/`);
  if (process.argv.includes("--watch")) {
    const ctx = await esbuild.context(options);
    await ctx.watch();
    console.log("watching dashboard/src");
  }
}
