/**
 * @module bpf/pageout — give back the code pages start-up touched: this process's own
 * executable first of all, and the libraries it loaded.
 *
 * Why: `dist/beetrace` is one ~115 MB file (Bun's runtime + the embedded program). Start-up runs
 * a lot of that code once — the bundle's bytecode, the parser, the WebAssembly and FFI
 * compilers, libbpf's loader path — and those file pages then stay mapped, counted in the
 * tracer's RSS (≈ 47 MiB of the ≈ 85 MiB idle RSS measured in bench/RESULTS.md, memory) although
 * an idle or draining tracer uses about half of them. Unmapping them costs little: they stay in
 * the page cache, and the ones the drain loop needs come back on their next touch (a minor
 * fault, with the kernel's fault-around).
 *
 * Only resident pages that are still the file's own are touched: /proc/self/pagemap
 * (Documentation/admin-guide/mm/pagemap.rst: bit 63 present, bit 61 file-page or shared-anon)
 * picks them, so private copies the runtime wrote (.data, relocations) are never dropped.
 * - read-only and executable private mappings: MADV_DONTNEED. On a private file mapping it drops
 *   the page-table entries and a later access maps the file's page again; for a page that is
 *   still the file's (never written — and a mapping without PROT_WRITE cannot be written
 *   meanwhile) those are the same bytes. Fast: page tables only (~5 ms for 45 MiB).
 * - the executable's writable mappings (the embedded program, `.bun`, sits next to .data): a
 *   page that is the file's now could be written by another thread before the call, and
 *   DONTNEED would lose that write; MADV_PAGEOUT (Linux 5.4+) instead asks reclaim to take the
 *   page, which never loses data (a page written meanwhile is anonymous and stays, without
 *   swap). Slower per page, and only a few MiB are there.
 * Errors (EINVAL for MADV_PAGEOUT before 5.4, no /proc) leave the pages where they are.
 */
import { closeSync, openSync, readFileSync, readSync, readlinkSync } from "node:fs";
import { ffi, type Bound } from "./ffi.ts";
import { readErrno, systemPageSize } from "./libc.ts";

/** asm-generic/mman-common.h */
const MADV_RANDOM = 1;
const MADV_DONTNEED = 4;
const MADV_PAGEOUT = 21;
/**
 * Documentation/admin-guide/mm/pagemap.rst: bit 63 present, bit 61 file-page or shared-anon —
 * bits 31 and 29 of each entry's high 32-bit word (entries are little-endian u64s).
 */
const PM_HIGH_PRESENT = 1 << 31;
const PM_HIGH_FILE = 1 << 29;

const DEFS = { madvise: { args: ["ptr", "usize", "i32"], returns: "i32" } } as const;
let lib: Bound<typeof DEFS> | undefined;

export interface PageOutResult {
  /** Bytes released (resident file pages of the code mappings at the time). */
  advisedBytes: number;
  /** Set when madvise failed or /proc was unreadable; what was not released stays resident. */
  error?: string;
}

interface Range {
  start: number;
  end: number;
}

interface Mapping extends Range {
  writable: boolean;
}

/**
 * Private file mappings in /proc/self/maps that may be released: every read-only or executable
 * one (the executable's code and constants, libc, libstdc++, the libbpf bundle), and the
 * writable ones of `exe` (where the embedded program lives). Shared mappings (the BPF ring
 * buffer, a mapped target binary) and pseudo-files ([vdso], anon_inode:…) are left alone.
 */
function releasable(exe: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
    // "start-end perms offset dev inode   pathname"; the pathname is everything after the inode.
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const perms = m[3]!;
    if (perms[3] !== "p" || perms[0] !== "r") continue;
    const writable = perms[1] === "w";
    if (writable && m[4] !== exe) continue;
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), writable });
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
  // High words only, no BigInt per page: entries are native u64s, and on the little-endian
  // machines beetrace runs on (x86-64, arm64) an entry's high word is its second.
  const words = new Uint32Array(buf.buffer, 0, (got - (got % 8)) / 4);
  const runs: Range[] = [];
  let runStart = -1;
  const n = words.length / 2;
  for (let i = 0; i <= n; i++) {
    const hi = i < n ? words[2 * i + 1]! : 0;
    const file = (hi & PM_HIGH_PRESENT) !== 0 && (hi & PM_HIGH_FILE) !== 0;
    if (file && runStart < 0) runStart = i;
    if (!file && runStart >= 0) {
      runs.push({ start: r.start + runStart * page, end: r.start + i * page });
      runStart = -1;
    }
  }
  return runs;
}

/**
 * Release the resident file pages of this process's code (its executable, /proc/self/exe, and
 * its libraries) as described above. Never throws: at worst nothing is released and `error`
 * says why.
 */
export function releaseCodePages(): PageOutResult {
  let fd: number | undefined;
  try {
    const exe = readlinkSync("/proc/self/exe");
    const page = systemPageSize();
    lib ??= ffi().open("libc.so.6", DEFS).symbols;
    fd = openSync("/proc/self/pagemap", "r");
    let advisedBytes = 0;
    for (const m of releasable(exe)) {
      const advice = m.writable ? MADV_PAGEOUT : MADV_DONTNEED;
      // No read-around on the next faults: a page touched again comes back alone, not with the
      // pages around it (mm/filemap.c skips read-ahead for VM_RAND_READ); measured ~1 MiB less
      // resident when idle. A hint only; errors are irrelevant.
      lib.madvise(m.start, m.end - m.start, MADV_RANDOM);
      for (const run of fileRuns(fd, m, page)) {
        if (lib.madvise(run.start, run.end - run.start, advice) !== 0) {
          const errno = readErrno();
          // EINVAL: no MADV_PAGEOUT (Linux < 5.4); the read-only mappings can still be dropped.
          if (advice === MADV_PAGEOUT) break;
          return { advisedBytes, error: `madvise failed: errno ${errno}` };
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
