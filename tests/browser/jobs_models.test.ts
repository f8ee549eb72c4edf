// The dashboard's shell, Jobs and Models pages in Chromium against the seeded platform (global_setup):
// sign-in, the trained job's real loss curve, cancel, moving an alias, error states as text, layout at
// desktop and phone widths, keyboard reach and a clean console.
import { describe, expect, inject, it } from "vitest";
import { freePort } from "../e2e/wrangler_dev";
import { expectNoHorizontalScroll, openClosedAfterEach, openPage } from "./browser";

const seed = inject("seed");
const open = openClosedAfterEach();

describe("sign-in", () => {
  it("signs in with a good key and lands on the jobs list", async () => {
    const { page, consoleErrors } = await open("/jobs", { key: false });
    await page.getByLabel("API key").fill(seed.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.getByRole("link", { name: seed.jobId }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("selfsup.apiKey"))).toBe(seed.key);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("selfsup.apiKey"))).toBeNull();
    expect(consoleErrors).toEqual([]);
  });

  it("shows a bad key's 401 problem as text", async () => {
    const { page } = await open("/jobs", { key: false });
    await page.getByLabel("API key").fill("ss_nothing_00000000000000000000000000000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    const text = (await alert.textContent()) ?? "";
    expect(text).toContain("401");
    expect(text.length).toBeGreaterThan(10);
    expect(await page.evaluate(() => sessionStorage.getItem("selfsup.apiKey"))).toBeNull();
  });

  it("says the API is down, as text, when nothing answers", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const { page } = await open("/jobs", { key: false, api: closed });
    await page.getByLabel("API key").fill(seed.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/API down[\s\S]*not reachable/);
  });

  it("says the API is down, as text, on a page of a signed-in session", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const { page } = await open(`/jobs/${seed.jobId}`, { api: closed });
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/API down[\s\S]*not reachable/);
    // the nav stays, so the user can sign out or try another page
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(true);
  });
});

describe("jobs", () => {
  it("lists the trained job with progress and throughput, refreshing while one is queued", async () => {
    const { page, consoleErrors } = await open("/jobs");
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: seed.jobId }) });
    await row.waitFor();
    expect(await row.textContent()).toMatch(/succeeded[\s\S]*120\/120 steps[\s\S]*tokens\/s/);
    await page.getByText(/refreshing every/).waitFor(); // the queued job keeps the list live
    expect(consoleErrors).toEqual([]);
  });

  it("draws the job's real loss curve and eval-probe curve with points", async () => {
    const { page, consoleErrors } = await open(`/jobs/${seed.jobId}`);
    const loss = page.locator('[data-chart="loss"] svg');
    await loss.waitFor();
    expect(await loss.locator("circle").count()).toBeGreaterThan(2);
    expect(await loss.locator("path").count()).toBeGreaterThan(0);
    expect(await loss.innerHTML()).toContain("loss");
    // Several probe kinds: a figure with a colour legend around the plot's SVG.
    const evalDots = page.locator('[data-chart="eval"] svg circle');
    await evalDots.first().waitFor();
    expect(await evalDots.count()).toBeGreaterThan(0);
    expect(await page.locator('[data-chart="eval"]').textContent()).toMatch(/accuracy/);
    const events = await page.getByRole("heading", { name: "Events" }).locator("..").textContent();
    expect(events).toMatch(/claimed/);
    expect(events).toMatch(/succeeded/);
    expect(await page.getByRole("button", { name: "Cancel job" }).isVisible()).toBe(false);
    expect(consoleErrors).toEqual([]);
  });

  it("cancels a queued job after confirming", async () => {
    const { page, consoleErrors } = await open(`/jobs/${seed.queuedJobId}`);
    page.on("dialog", (d) => void d.accept());
    await page.getByRole("button", { name: "Cancel job" }).click();
    await page.getByText(/Cancel requested: the job is cancelled/).waitFor();
    expect(await page.locator(".page-head .badge").textContent()).toBe("cancelled");
    expect(consoleErrors).toEqual([]);
  });
});

describe("models", () => {
  it("shows versions with lineage, aliases with history, and snippets", async () => {
    const { page, consoleErrors } = await open(`/models/${seed.model}`);
    await page.getByRole("heading", { name: "Versions" }).waitFor();
    const v2 = (await page.getByRole("article", { name: `${seed.model}@2` }).textContent()) ?? "";
    expect(v2).toMatch(/latest[\s\S]*production/);
    expect(v2).toMatch(new RegExp(`training \\(${seed.jobId}\\)`));
    expect(v2).toContain(seed.corpusId);
    expect(v2).toMatch(/mlm · tiny[\s\S]*from scratch/);
    expect(v2).toMatch(/Isotropymean cosine -?\d/);
    expect(await page.getByRole("article", { name: `${seed.model}@1` }).textContent()).toMatch(/import[\s\S]*imported/);
    const curl = await page.getByLabel("curl", { exact: true }).textContent();
    expect(curl).toContain(`${seed.url}/v1/embeddings`);
    expect(curl).toContain(`${seed.model}@production`);
    expect(await page.getByLabel("OpenAI SDK (Python)").textContent()).toContain("client.embeddings.create");
    expect(consoleErrors).toEqual([]);
  });

  it("moves an alias and the history grows", async () => {
    const { page, consoleErrors } = await open(`/models/${seed.model}`);
    const history = page.locator('[data-history="production"] li');
    await history.first().waitFor();
    const before = await history.count();
    // The seed points production at 2; go to the other version (a no-op move is not history).
    const heading = await page
      .locator(".alias-history", { has: page.locator('[data-history="production"]') })
      .locator("h3")
      .textContent();
    const from = Number(/@(\d+)/.exec(heading ?? "")?.[1]);
    const to = from === 2 ? 1 : 2;
    await page.getByLabel("Alias", { exact: true }).fill("production");
    await page.getByLabel("Version", { exact: true }).selectOption(String(to));
    await page.getByLabel("Reason", { exact: true }).fill("moved from the dashboard");
    await page.getByRole("button", { name: "Move alias" }).click();
    await page.getByText(`production now points at ${seed.model}@${to}.`).waitFor();
    expect(await history.count()).toBe(before + 1);
    expect(await history.first().textContent()).toMatch(
      new RegExp(`v${from} → v${to}[\\s\\S]*moved from the dashboard`),
    );
    expect(
      await page
        .locator(".alias-history", { has: page.locator('[data-history="production"]') })
        .locator("h3")
        .textContent(),
    ).toContain(`${seed.model}@${to}`);
    expect(consoleErrors).toEqual([]);
  });

  it("shows the API's 400 as text for an alias name it refuses", async () => {
    const { page } = await open(`/models/${seed.model}`);
    await page.getByRole("button", { name: "Move alias" }).waitFor();
    await page.getByLabel("Alias", { exact: true }).fill("Not An Alias");
    await page.getByRole("button", { name: "Move alias" }).click();
    const alert = page.getByRole("region", { name: "Move an alias" }).getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/400[\s\S]*lowercase/);
  });
});

describe("layout and keyboard", () => {
  for (const [w, h] of [
    [1400, 900],
    [390, 844],
  ] as const) {
    it(`no horizontal scroll at ${w}×${h}`, async () => {
      for (const hash of ["/jobs", `/jobs/${seed.jobId}`, "/models", `/models/${seed.model}`]) {
        const { page, consoleErrors, close } = await openPage(hash, { width: w, height: h });
        try {
          await page.locator("main h1").first().waitFor();
          await page.waitForLoadState("networkidle");
          await expectNoHorizontalScroll(page);
          expect(consoleErrors, hash).toEqual([]);
        } finally {
          await close();
        }
      }
    });
  }

  it("on a phone the jobs list stacks each job as a card, its status and progress in view", async () => {
    const { page } = await open("/jobs", { width: 390, height: 844 });
    const card = page.getByRole("link", { name: seed.jobId }).locator("xpath=ancestor::tr");
    await card.waitFor();
    for (const part of [card.locator(".badge"), card.locator("progress")]) {
      const box = await part.boundingBox();
      expect(box).not.toBeNull();
      expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(390);
    }
  });

  it("Tab reaches every nav link", async () => {
    const { page } = await open("/jobs");
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    const reached = new Set<string>();
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press("Tab");
      const label = await page.evaluate(() =>
        document.activeElement?.closest("nav") ? document.activeElement.textContent : null,
      );
      if (label) reached.add(label.trim());
    }
    for (const name of ["Jobs", "Models", "Datasets", "Evaluations", "Playground", "Sign out"]) {
      expect(reached, `Tab never reached ${name}`).toContain(name);
    }
  });
});
