/**
 * @module trace/footprint — shrink the tracer once its probes are attached.
 *
 * Start-up needs far more memory than tracing: the target's ELF, DWARF and function table, the
 * iced-x86 decoder (a WebAssembly instance whose memory never shrinks while referenced), the
 * compilers that ran the bundle and the wasm, libbpf's loader. Tracing needs the ring buffer,
 * the outputs and the drain loop. So, once per attach (measured in bench/RESULTS.md, memory):
 * 1. the decoder is dropped (vendor/iced releaseIced; a later plan loads it again);
 * 2. one full, synchronous garbage collection frees what planning left (the session keeps
 *    nothing of the analysis: trace/session.ts);
 * 3. the executable's own file pages start-up touched are reclaimed (bpf/pageout.ts); the drain
 *    loop reads back the few it uses.
 * Costs a few milliseconds after the "tracing" line, none per span.
 * `BEETRACE_NO_TRIM=1` skips it (to measure what it saves: bench/memory.sh).
 */
import { releaseIced } from "../vendor/iced/index.ts";
import { pageOutExecutable } from "../bpf/pageout.ts";
import { log } from "../log.ts";

export function trimAfterAttach(): void {
  if (process.env.BEETRACE_NO_TRIM === "1") return;
  const t0 = performance.now();
  releaseIced();
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  bun?.gc(true);
  const p = pageOutExecutable();
  const ms = (performance.now() - t0).toFixed(1);
  if (p.error) log.verbose(`start-up memory: collected in ${ms} ms; executable pages kept (${p.error})`);
  else log.verbose(`start-up memory: collected and ${(p.advisedBytes / 1048576).toFixed(1)} MiB of executable pages reclaimed in ${ms} ms`);
}
