// `npm run dashboard:screenshots`: seeds the same platform the browser tests use (tests/browser/seed.ts:
// real wrangler dev, real trainer run, evaluation) and writes docs/screenshots/<page>-{desktop,phone}.png
// for every dashboard page, with Debian's Chromium. Runs under tsx (node --import tsx) for the TS seed.
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startSeededPlatform } from "../tests/browser/seed.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const outDir = path.join(root, "docs/screenshots");
const VIEWPORTS = { desktop: { width: 1400, height: 900 }, phone: { width: 390, height: 844 } };

/** What a page shows only after a user acts: the playground's cosine matrix needs inputs embedded. */
const PREPARE = {
  playground: async (page) => {
    const box = page.getByRole("textbox").first();
    const embed = page.getByRole("button", { name: "Embed" });
    if (!(await box.count()) || !(await embed.count())) return;
    await box.fill(
      "Call me Ishmael.\nThe whale surfaced beside the ship.\nA cup of tea in the afternoon.\nThe harpooner threw his iron.",
    );
    await embed.click();
    await page.locator("main svg").first().waitFor({ timeout: 30_000 });
  },
};

/** name → hash path, from the seeded ids */
const pages = (s) => ({
  jobs: "/jobs",
  job: `/jobs/${s.jobId}`,
  models: `/models/${s.model}`,
  datasets: `/datasets/${s.datasetId}`,
  evaluation: `/evaluations/${s.evaluationId}`,
  playground: "/playground",
});

execFileSync("bash", [path.join(root, "scripts/ensure-chromium.sh")], { stdio: "inherit" });
const seed = await startSeededPlatform((line) => console.log(`seed: ${line}`));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
let failed = false;
try {
  mkdirSync(outDir, { recursive: true });
  const only = process.argv.slice(2);
  for (const [name, hash] of Object.entries(pages(seed))) {
    if (only.length && !only.includes(name)) continue;
    for (const [kind, viewport] of Object.entries(VIEWPORTS)) {
      const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
      await context.addInitScript((k) => sessionStorage.setItem("selfsup.apiKey", k), seed.key);
      const page = await context.newPage();
      const errors = [];
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${seed.url}/dashboard/#${hash}`);
      await page.locator("main h1").first().waitFor();
      await page.waitForLoadState("networkidle");
      await PREPARE[name]?.(page);
      await page.waitForLoadState("networkidle");
      await page.waitForTimeout(500); // charts draw after their data arrives
      const file = path.join(outDir, `${name}-${kind}.png`);
      await page.screenshot({ path: file, fullPage: true });
      const kb = Math.round(statSync(file).size / 1024);
      console.log(
        `${path.relative(root, file)} ${kb} KiB${errors.length ? ` — console errors: ${errors.join(" | ")}` : ""}`,
      );
      if (errors.length) failed = true;
      await context.close();
    }
  }
} finally {
  await browser.close();
  await seed.stop();
}
if (failed) process.exit(1);
