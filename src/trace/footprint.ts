/**
 * @module trace/footprint — keep the tracer's resident memory down through start-up and after.
 *
 * Start-up needs far more memory than tracing: the target's ELF, DWARF and function table, the
 * iced-x86 decoder (a WebAssembly instance whose memory never shrinks while referenced), the
 * compilers that ran the bundle and the wasm, libbpf's loader. Tracing needs the ring buffer,
 * the outputs and the drain loop. What is given back, and when (measured in bench/RESULTS.md,
 * memory; bench/memory.sh):
 * - "analysed" (the target is parsed, while the x86 decoder compiles on another thread:
 *   trace/session.ts): the code pages start-up touched — of the executable itself above all
 *   (bpf/pageout.ts): Bun's start-up and the bundle's bytecode are done with (the wasm
 *   compiler's pages, still in use, come back). Page tables only, ~5 ms.
 * - "plans made" (right after planning, before the first BPF object is opened): one full
 *   collection, ~5 ms. Planning leaves its garbage (DWARF above all: +21 MB on the sample); freed
 *   now, its pages are reused by the decoder and libbpf's loader instead of adding to them:
 *   start-up peak 80.1–82.4 → 75.6–76.5 MiB on the sample (bench/RESULTS.md).
 * - "planned" (while the first BPF object loads on another thread, once the plans' sites are
 *   decoded): the decoder is dropped (vendor/iced releaseIced; a later plan loads it again), one
 *   full collection, the code pages again — so the ring buffer's mapping and tracing do not come
 *   on top of planning's memory (start-up peak 105 → ~82 MiB on the sample when it ran before the
 *   load; ~80 MiB now that libbpf's loader runs alongside: bench/RESULTS.md).
 * - "attached" (after the "tracing" line): the same once more; what planning left is garbage by
 *   then (the session keeps nothing of the analysis: trace/session.ts).
 * Each step takes ~5–20 ms on the 2-core test machine (the collection most).
 * - after a busy stretch: the OTLP path decodes every record into objects (strings, BigInts)
 *   and JSC collects them late — once allocation stops, sometimes not at all: after a burst of
 *   15k spans/s, ~28 MB of heap (376 000 cells) stayed for as long as it was watched, RSS 91 MiB
 *   where one collection gives ~70 (bench/RESULTS.md §00m). So once a second the JS heap size
 *   is read; when it has stopped growing (idle) while holding more than GARBAGE_WORTH_BYTES
 *   above what the last collection left, one full collection runs. Never while spans flow (the
 *   heap grows then), so nothing per span.
 * `BEETRACE_NO_TRIM=1` skips all of it (to measure what it saves: bench/memory.sh `notrim`).
 */
import { releaseIced } from "../vendor/iced/index.ts";
import { releaseCodePages } from "../bpf/pageout.ts";
import { log } from "../log.ts";
import { canCollectGarbage, collectGarbage } from "../runtime.ts";

export type StartupStage = "analysed" | "plans made" | "planned" | "attached";

export function trimStartup(stage: StartupStage): void {
  if (process.env.BEETRACE_NO_TRIM === "1") return;
  const t0 = performance.now();
  if (stage === "plans made") {
    collectGarbage();
    log.verbose(`memory (${stage}): planning's garbage collected in ${(performance.now() - t0).toFixed(1)} ms`);
    return;
  }
  if (stage !== "analysed") {
    releaseIced();
    collectGarbage();
  }
  const t1 = performance.now();
  const p = releaseCodePages();
  const t2 = performance.now();
  const ms = stage === "analysed" ? `${(t2 - t1).toFixed(1)} ms` : `${(t1 - t0).toFixed(1)} ms collecting + ${(t2 - t1).toFixed(1)} ms`;
  if (p.error) log.verbose(`memory (${stage}): code pages kept (${p.error}); ${ms}`);
  else log.verbose(`memory (${stage}): ${(p.advisedBytes / 1048576).toFixed(1)} MiB of code pages released in ${ms}`);
}

/** After attach (cli/trace.ts). */
export function trimAfterAttach(): void {
  trimStartup("attached");
  collectWhenIdle();
}

/** Worth one full collection (10–30 ms) once idle; a few seconds of OTLP export leave more. */
const GARBAGE_WORTH_BYTES = 8 * 1024 * 1024;
/** Heap growth per check below which the tracer counts as idle (its idle drain ticks allocate far less). */
const IDLE_GROWTH_BYTES = 1024 * 1024;
let idleWatch: ReturnType<typeof setInterval> | undefined;

/** Starts (once per process) the check described above; its timer never keeps the process alive. */
function collectWhenIdle(): void {
  if (idleWatch !== undefined || !canCollectGarbage() || process.env.BEETRACE_NO_TRIM === "1") return;
  const heap = () => process.memoryUsage().heapUsed;
  let base = heap();
  let last = base;
  idleWatch = setInterval(() => {
    const now = heap();
    const idle = now - last < IDLE_GROWTH_BYTES;
    last = now;
    if (now < base) base = now; // JSC collected on its own: the new floor
    if (idle && now - base > GARBAGE_WORTH_BYTES) {
      const t0 = performance.now();
      collectGarbage();
      base = last = heap();
      log.debug(`memory: idle after a busy stretch: ${((now - base) / 1048576).toFixed(1)} MiB of heap collected in ${(performance.now() - t0).toFixed(1)} ms`);
    }
  }, 1000);
  (idleWatch as { unref?: () => void }).unref?.();
}
