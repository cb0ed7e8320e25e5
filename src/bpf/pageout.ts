/**
 * @module bpf/pageout — give back the pages of this process's own executable that start-up
 * touched, with madvise(MADV_PAGEOUT).
 *
 * Why: `dist/beetrace` is one ~115 MB file (Bun's runtime + the embedded program). Start-up runs
 * a lot of that code once — the bundle's bytecode, the parser, the WebAssembly and FFI
 * compilers, libbpf's loader path — and those file pages then stay mapped, counted in the
 * tracer's RSS (≈ 47 MiB of the ≈ 85 MiB idle RSS measured in bench/RESULTS.md, memory) although
 * an idle or draining tracer uses a fraction of them. MADV_PAGEOUT (Linux 5.4+,
 * asm-generic/mman-common.h) reclaims them now; the ones the drain loop needs are read back on
 * their next touch.
 *
 * Only file-backed resident pages are advised: /proc/self/pagemap (Documentation/admin-guide/mm/
 * pagemap.rst: bit 63 present, bit 61 file-page or shared-anon) picks them, so private pages the
 * runtime wrote (.data, relocations: anonymous copies) are never handed to reclaim, where a
 * machine with swap would swap them out. Reclaiming a clean file page loses nothing, so this is
 * safe on any mapping; a kernel without MADV_PAGEOUT answers EINVAL and nothing happens.
 */
import { closeSync, openSync, readFileSync, readSync, readlinkSync } from "node:fs";
import { ffi, type Bound } from "./ffi.ts";
import { readErrno, systemPageSize } from "./libc.ts";

/** asm-generic/mman-common.h */
const MADV_RANDOM = 1;
const MADV_PAGEOUT = 21;
/** Documentation/admin-guide/mm/pagemap.rst */
const PM_PRESENT = 1n << 63n;
const PM_FILE = 1n << 61n;

const DEFS = { madvise: { args: ["ptr", "usize", "i32"], returns: "i32" } } as const;
let lib: Bound<typeof DEFS> | undefined;

export interface PageOutResult {
  /** Bytes handed to MADV_PAGEOUT (resident file pages of the executable at the time). */
  advisedBytes: number;
  /** Set when the kernel refused (EINVAL before Linux 5.4) or /proc was unreadable; nothing was reclaimed then. */
  error?: string;
}

interface Range {
  start: number;
  end: number;
}

/** Mappings of `path` in /proc/self/maps (the executable appears as 4-6 mappings). */
function mappingsOf(path: string): Range[] {
  const out: Range[] = [];
  for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
    // "start-end perms offset dev inode   pathname"; the pathname is everything after the inode.
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s+(.*)$/.exec(line);
    if (m && m[3] === path) out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16) });
  }
  return out;
}

/** Runs of present file-backed pages inside `r`, from /proc/self/pagemap (8 bytes per page). */
function fileRuns(fd: number, r: Range, page: number): Range[] {
  const pages = (r.end - r.start) / page;
  const buf = new Uint8Array(pages * 8);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, (r.start / page) * 8 + got);
    if (n <= 0) break;
    got += n;
  }
  const view = new DataView(buf.buffer, 0, got - (got % 8));
  const runs: Range[] = [];
  let runStart = -1;
  const n = view.byteLength / 8;
  for (let i = 0; i <= n; i++) {
    const e = i < n ? view.getBigUint64(i * 8, true) : 0n;
    const file = (e & PM_PRESENT) !== 0n && (e & PM_FILE) !== 0n;
    if (file && runStart < 0) runStart = i;
    if (!file && runStart >= 0) {
      runs.push({ start: r.start + runStart * page, end: r.start + i * page });
      runStart = -1;
    }
  }
  return runs;
}

/**
 * MADV_PAGEOUT over the resident file pages of this process's executable (/proc/self/exe).
 * Never throws: at worst nothing is reclaimed and `error` says why.
 */
export function pageOutExecutable(): PageOutResult {
  let fd: number | undefined;
  try {
    const exe = readlinkSync("/proc/self/exe");
    const page = systemPageSize();
    lib ??= ffi().open("libc.so.6", DEFS).symbols;
    fd = openSync("/proc/self/pagemap", "r");
    let advisedBytes = 0;
    for (const m of mappingsOf(exe)) {
      // Without read-ahead, a page touched again comes back alone instead of with the ~128 KiB
      // around it (mm/filemap.c: do_sync_mmap_readahead skips VM_RAND_READ mappings).
      if (process.env.BEETRACE_TRIM_RANDOM !== "0") lib.madvise(m.start, m.end - m.start, MADV_RANDOM);
      for (const run of fileRuns(fd, m, page)) {
        if (lib.madvise(run.start, run.end - run.start, MADV_PAGEOUT) !== 0) {
          return { advisedBytes, error: `madvise(MADV_PAGEOUT) failed: errno ${readErrno()}` };
        }
        advisedBytes += run.end - run.start;
      }
    }
    return { advisedBytes };
  } catch (e) {
    return { advisedBytes: 0, error: e instanceof Error ? e.message : String(e) };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
