// vitest globalSetup of the `browser` project: Chromium present, the dashboard built, one seeded
// platform for every browser test file (tests read it with `inject("seed")`).
import { execFileSync } from "node:child_process";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { type Seeded, startSeededPlatform } from "./seed";

declare module "vitest" {
  export interface ProvidedContext {
    seed: Seeded;
  }
}

export default async function setup(project: TestProject) {
  execFileSync("bash", [path.join(import.meta.dirname, "../../scripts/ensure-chromium.sh")], { stdio: "inherit" });
  const started = Date.now();
  const platform = await startSeededPlatform((line) => console.log(`[dashboard seed] ${line}`));
  console.log(`[dashboard seed] ready in ${Math.round((Date.now() - started) / 1000)}s`);
  const { stop, ...seed } = platform;
  project.provide("seed", seed);
  return stop;
}
