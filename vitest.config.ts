import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { buildDashboard } from "./scripts/build-dashboard.mjs";
import { localS3Credentials } from "./scripts/local-s3.mjs";

// wrangler.toml's [assets] directory must exist for workerd and `wrangler dev` to start: a fresh
// clone running one test file (npm test builds it first) gets the dashboard built here.
if (!existsSync(path.join(import.meta.dirname, "dashboard/dist/dashboard/index.html"))) await buildDashboard();

// The fixture encoder the embeddings tests register through the import route. Its files reach the
// Workers test isolate as data-blob bindings (`FIXTURE_<n>`), listed in `FIXTURE_FILES`.
// SELFSUP_FIXTURE_ENCODER points at another artifact folder (e.g. one built by
// bench/embeddings_make_encoder.py).
const fixtureDir = process.env.SELFSUP_FIXTURE_ENCODER ?? path.join(import.meta.dirname, "tests/fixtures/tiny-encoder");
const fixtureNames = existsSync(fixtureDir)
  ? readdirSync(fixtureDir)
      .filter((f) => !f.startsWith("."))
      .sort()
  : [];
const fixtureBlobs = Object.fromEntries(fixtureNames.map((f, i) => [`FIXTURE_${i}`, path.join(fixtureDir, f)]));
const fixtureFiles = Object.fromEntries(fixtureNames.map((f, i) => [f, `FIXTURE_${i}`]));

// The image and series fixture encoders, bound as FIXTURE_DIRS[dir][file] -> data-blob binding
// name (tests/modal_fixture.ts reads them).
const encoderDirs = ["tiny-image-encoder", "tiny-series-encoder"];
const dirBlobs: Record<string, string> = {};
const fixtureDirs: Record<string, Record<string, string>> = {};
for (const dir of encoderDirs) {
  const full = path.join(import.meta.dirname, "tests/fixtures", dir);
  if (!existsSync(full)) continue;
  const files: Record<string, string> = {};
  readdirSync(full)
    .filter((f) => !f.startsWith("."))
    .sort()
    .forEach((f, i) => {
      const binding = `FIXTURE_${dir.replace(/-/g, "_").toUpperCase()}_${i}`;
      dirBlobs[binding] = path.join(full, f);
      files[f] = binding;
    });
  fixtureDirs[dir] = files;
}

// api/routes/docs.ts imports the Scalar bundle with `with { type: "text" }`, which wrangler's esbuild
// inlines as a string; Vite knows that as `?raw`.
const textImports = {
  name: "selfsup-text-imports",
  enforce: "pre" as const,
  transform(code: string, id: string) {
    if (!id.includes("/api/") || !code.includes("with {")) return null;
    return code.replace(/from\s+"([^"]+)"\s+with\s*\{\s*type:\s*"text",?\s*\}/g, 'from "$1?raw"');
  },
};

export default defineConfig({
  test: {
    projects: [
      {
        // The API inside workerd (@cloudflare/vitest-plugin): D1, R2 and onnxruntime-web for real.
        plugins: [
          textImports,
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // The tests apply the same migrations `wrangler d1 migrations apply` does.
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations(path.join(import.meta.dirname, "migrations")),
                FIXTURE_FILES: fixtureFiles,
                FIXTURE_DIRS: fixtureDirs,
                // Presigning needs the same credentials `wrangler dev` gives its local S3 endpoint.
                ...localS3Credentials(),
              },
              dataBlobBindings: { ...fixtureBlobs, ...dirBlobs },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/e2e/**", "tests/node/**", "tests/browser/**", "**/node_modules/**"],
          setupFiles: ["./tests/setup.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // Node-side: onnxruntime-node parity, and end-to-end tests against a real `wrangler dev`
        // (tests/e2e starts its own on a free port with its own --persist-to directory).
        test: {
          name: "node",
          include: ["tests/node/**/*.test.ts", "tests/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        // The dashboard in Debian's Chromium (playwright-core) against one seeded `wrangler dev`
        // that tests/browser/global_setup.ts starts (a real trainer run included) for every file.
        test: {
          name: "browser",
          include: ["tests/browser/**/*.test.ts"],
          environment: "node",
          globalSetup: ["./tests/browser/global_setup.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
