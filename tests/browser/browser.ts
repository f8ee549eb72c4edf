// Opens the dashboard in Debian's Chromium (playwright-core) against the seeded platform, signed in
// with the seed's key (sessionStorage, as the sign-in form leaves it), and collects console errors.
import { type Browser, chromium, type Page } from "playwright-core";
import { afterEach, expect, inject } from "vitest";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let browser: Promise<Browser> | null = null;
let open = 0;

function launch(): Promise<Browser> {
  browser ??= chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  return browser;
}

export type Opened = { page: Page; consoleErrors: string[]; close(): Promise<void> };

export type OpenOptions = {
  width?: number;
  height?: number;
  /** false: no key in the session (the sign-in form shows); a string: that key */
  key?: string | false;
  /** another API origin for the app (`?api=`), e.g. a closed port to show "API down" */
  api?: string;
};

/** `openPage("/jobs")` → the dashboard at `#/jobs`, signed in, ready for assertions. */
export async function openPage(hashPath: string, opts: OpenOptions = {}): Promise<Opened> {
  const seed = inject("seed");
  const b = await launch();
  const context = await b.newContext({ viewport: { width: opts.width ?? 1400, height: opts.height ?? 900 } });
  open++;
  const key = opts.key === undefined ? seed.key : opts.key;
  if (key) {
    await context.addInitScript((k) => {
      sessionStorage.setItem("selfsup.apiKey", k);
    }, key);
  }
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const query = opts.api ? `?api=${encodeURIComponent(opts.api)}` : "";
  await page.goto(`${seed.url}/dashboard/${query}#${hashPath.startsWith("/") ? hashPath : `/${hashPath}`}`);
  const close = async () => {
    await context.close();
    if (--open === 0 && browser) {
      const done = browser;
      browser = null;
      await (await done).close();
    }
  };
  return { page, consoleErrors, close };
}

/** The page is no wider than the viewport (wide tables scroll inside their own wrapper). */
export async function expectNoHorizontalScroll(page: Page): Promise<void> {
  const { scroll, client, widest } = await page.evaluate(() => {
    const doc = document.documentElement;
    // The widest element outside a horizontal scroller, to name the culprit when it fails.
    let widest = "";
    let max = 0;
    for (const e of document.querySelectorAll("body *")) {
      if (e.closest(".table-wrap, pre")) continue;
      const r = e.getBoundingClientRect();
      if (r.right > max) {
        max = r.right;
        widest = `${e.tagName.toLowerCase()}.${(e as HTMLElement).className} (${Math.round(r.right)}px)`;
      }
    }
    return { scroll: doc.scrollWidth, client: doc.clientWidth, widest };
  });
  expect(scroll, `page scrolls sideways: ${scroll}px > ${client}px; widest: ${widest}`).toBeLessThanOrEqual(client);
}

/** `openPage` for a test file: every page a test opens is closed after it. */
export function openClosedAfterEach(): (...args: Parameters<typeof openPage>) => Promise<Opened> {
  let opened: Opened[] = [];
  afterEach(async () => {
    for (const o of opened) await o.close();
    opened = [];
  });
  return async (...args) => {
    const o = await openPage(...args);
    opened.push(o);
    return o;
  };
}
