// Per-isolate caches for the hot path (issue 15): what every embeddings call used to read from D1
// (the key, then model → alias → version) lives here for a few seconds. An isolate serves many
// requests, but there are many isolates, so every entry must be safe to serve stale for its TTL;
// a change made through this isolate evicts at once.

/** A small map whose entries expire `ttlMs` after they were set; the oldest go first past `maxEntries`. */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; expires: number }>();

  /**
   * @param ttlMs how long an entry is served after `set`.
   * @param maxEntries the most entries kept; setting one more drops the oldest.
   * @param now the clock (tests pass their own).
   */
  constructor(
    readonly ttlMs: number,
    readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!(ttlMs > 0)) throw new RangeError(`ttlMs must be > 0, got ${ttlMs}; pass the lifetime in milliseconds`);
    if (!(maxEntries >= 1)) throw new RangeError(`maxEntries must be >= 1, got ${maxEntries}`);
  }

  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Stores `value` for `ttlMs` (or the given lifetime), replacing any entry under `key`. */
  set(key: K, value: V, ttlMs = this.ttlMs): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as K;
      this.entries.delete(oldest);
    }
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /** Drops every entry `match` accepts (e.g. all keys of a revoked key id); returns how many. */
  deleteWhere(match: (key: K, value: V) => boolean): number {
    let n = 0;
    for (const [k, e] of this.entries) {
      if (match(k, e.value)) {
        this.entries.delete(k);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.entries.clear();
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.entries.size;
  }
}
