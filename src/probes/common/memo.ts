/**
 * @module probes/common/memo — results of pure string helpers kept per argument, for the
 * decoders' semconv parsing (host:port splits, route patterns): the same few strings come back
 * span after span (a service's Host header, its routes, a connection's peer), and record strings
 * are interned (probes/record.ts), so a lookup finds them without building anything.
 */

/**
 * `fn` with its results kept for up to `max` distinct arguments; past that the memory starts
 * over (a high-cardinality argument must not grow it without bound). Object results are frozen:
 * callers share them.
 */
export function memoized<T>(fn: (s: string) => T, max = 4096): (s: string) => T {
  const seen = new Map<string, T>();
  return (s: string): T => {
    const hit = seen.get(s);
    if (hit !== undefined || seen.has(s)) return hit as T;
    const v = fn(s);
    if (v !== null && typeof v === "object") Object.freeze(v);
    if (seen.size >= max) seen.clear();
    seen.set(s, v);
    return v;
  };
}

/**
 * Values kept per pair (a, b), in nested maps bounded per level like `memoized` (the outer one
 * at `maxA` keys, each inner one at `maxB`). No key is built per lookup: get() finds or misses,
 * set() keeps what the caller made on a miss.
 */
export class Memo2<A, B, T> {
  readonly #top = new Map<A, Map<B, T>>();
  constructor(
    readonly maxA = 1024,
    readonly maxB = 1024,
  ) {}

  get(a: A, b: B): T | undefined {
    return this.#top.get(a)?.get(b);
  }
  set(a: A, b: B, value: T): void {
    let byB = this.#top.get(a);
    if (byB === undefined) {
      if (this.#top.size >= this.maxA) this.#top.clear();
      this.#top.set(a, (byB = new Map()));
    }
    if (byB.size >= this.maxB) byB.clear();
    byB.set(b, value);
  }
}

/**
 * Values kept per (a, b, c, k): three strings and a small integer k in [0, 16), in nested maps
 * bounded per level like `memoized`. No key is built per lookup (concatenating the parts would
 * make a string per span): get() finds or misses, set() keeps what the caller made on a miss.
 */
export class Memo3<T> {
  readonly #top = new Map<string, Map<string, Map<string, (T | undefined)[]>>>();
  constructor(readonly max = 1024) {}

  get(a: string, b: string, c: string, k: number): T | undefined {
    return this.#top.get(a)?.get(b)?.get(c)?.[k];
  }
  set(a: string, b: string, c: string, k: number, value: T): void {
    let byB = this.#top.get(a);
    if (byB === undefined) {
      if (this.#top.size >= this.max) this.#top.clear();
      this.#top.set(a, (byB = new Map()));
    }
    let byC = byB.get(b);
    if (byC === undefined) {
      if (byB.size >= this.max) byB.clear();
      byB.set(b, (byC = new Map()));
    }
    let slots = byC.get(c);
    if (slots === undefined) {
      if (byC.size >= this.max) byC.clear();
      byC.set(c, (slots = new Array<T | undefined>(16).fill(undefined)));
    }
    slots[k] = value;
  }
}
