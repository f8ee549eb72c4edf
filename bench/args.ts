// Argument checks the load benchmarks share: numbers in range, and an API on loopback only (a load
// test never targets another host).

/** `raw` as a number in (0, max], or a RangeError naming the flag and an example. */
export function positive(name: string, raw: string | undefined, max: number): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > max) {
    throw new RangeError(`--${name} ${raw}: must be a number in (0, ${max}]; e.g. --${name} ${Math.min(10, max)}`);
  }
  return n;
}

/** The API URL without a trailing slash, refused unless it is on loopback. */
export function loopbackApi(raw: string | undefined, what: string): string {
  const api = (raw ?? "").replace(/\/$/, "");
  if (!api) throw new Error("--api is required: the URL of a running API, e.g. --api http://127.0.0.1:8787");
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(new URL(api).hostname)) {
    throw new Error(`--api ${api}: ${what} talks to loopback only (127.0.0.1, localhost, ::1)`);
  }
  return api;
}
