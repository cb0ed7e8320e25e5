/**
 * @module runtime — the runtime-specific calls that are not FFI (FFI is src/bpf/ffi.ts), behind
 * one neutral name each, so the rest of the code runs under Bun and under Deno alike.
 */
import { createRequire } from "node:module";

const requireBuiltin = createRequire(import.meta.url);
let zlibModule: typeof import("node:zlib") | undefined;
let http2Module: typeof import("node:http2") | undefined;
let childProcessModule: typeof import("node:child_process") | undefined;

/**
 * node:zlib and node:http2, loaded on first use. A top-level import would load them at every
 * start-up, whatever the command: `bun build --compile` makes one file and hoists every built-in
 * module import to its start, lazily imported command modules included (node:http2, node:zlib
 * and node:util cost ~12 ms of launch → probes live together: bench/RESULTS.md, start-up). Only
 * compressed DWARF, gzip-compressed OTLP, the viewer's HTML and OTLP/gRPC need them.
 */
export function zlib(): typeof import("node:zlib") {
  return (zlibModule ??= requireBuiltin("node:zlib") as typeof import("node:zlib"));
}
export function http2(): typeof import("node:http2") {
  return (http2Module ??= requireBuiltin("node:http2") as typeof import("node:http2"));
}
/** node:child_process, the same way (~4 ms at start-up): only `run` and one `doctor` check start programs. */
export function childProcess(): typeof import("node:child_process") {
  return (childProcessModule ??= requireBuiltin("node:child_process") as typeof import("node:child_process"));
}

/**
 * Collect garbage now, synchronously (a full collection). For a burst of allocation whose
 * objects outlive the young generation (a spill backlog being resent: each batch waits for the
 * collector's answer) and which the runtime otherwise lets pile up until the burst ends: Bun's
 * `gc(true)` runs a full JavaScriptCore collection and has mimalloc return freed pages. Deno
 * exposes no such call unless started with --v8-flags=--expose-gc (then `globalThis.gc`);
 * without it this is a no-op.
 */
export function collectGarbage(): void {
  const g = globalThis as { Bun?: { gc?: (force?: boolean) => void }; gc?: () => void };
  if (typeof g.Bun?.gc === "function") g.Bun.gc(true);
  else if (typeof g.gc === "function") g.gc();
}

/** Whether collectGarbage does anything here (Bun; Deno only with --expose-gc). */
export function canCollectGarbage(): boolean {
  const g = globalThis as { Bun?: { gc?: unknown }; gc?: unknown };
  return typeof g.Bun?.gc === "function" || typeof g.gc === "function";
}

/**
 * Raw DEFLATE (RFC 1951, no zlib or gzip wrapper) of `bytes` at `level` (1 = fastest). Under Bun,
 * Bun.deflateSync: the same format as node:zlib's deflateRawSync at 2–3× less CPU on capture
 * chunks (bench/RESULTS.md, capture compression), and node:zlib is not loaded at all on the
 * tracing path. Elsewhere node:zlib.
 */
export function deflateRaw(bytes: Uint8Array, level: number): Uint8Array {
  const bun = (globalThis as { Bun?: { deflateSync?: (b: Uint8Array, o: { level: number }) => Uint8Array } }).Bun;
  if (typeof bun?.deflateSync === "function") return bun.deflateSync(bytes, { level });
  return zlib().deflateRawSync(bytes, { level });
}

/**
 * Inflate raw DEFLATE `bytes` into at most `maxOutput` bytes (larger output throws: a bound
 * against a crafted stream that inflates without end). `partial`: the stream may be cut short
 * (a capture file cut mid-chunk); what decodes before the cut is returned instead of an error.
 * Throws on damaged data.
 */
export function inflateRaw(bytes: Uint8Array, maxOutput: number, partial: boolean): Uint8Array {
  const z = zlib();
  const out = z.inflateRawSync(bytes, {
    maxOutputLength: Math.max(1, maxOutput),
    ...(partial ? { finishFlush: z.constants.Z_SYNC_FLUSH } : {}),
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
