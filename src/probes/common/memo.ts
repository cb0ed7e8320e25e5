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
