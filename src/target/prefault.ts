/**
 * @module target/prefault — make read-only data of the target's executable resident before the
 * probes need it.
 *
 * bpf_probe_read_user cannot fault a page in: on a page the process has never touched it fails.
 * Some data the probes read is exactly that kind — the runtime type descriptors and names of error
 * types (bpf/include/go_errors.bpf.h, the OTel API probe's exception.type) sit in pages a service
 * may never read itself. Reading the range through /proc/PID/mem faults those pages into the
 * target's page tables (the kernel's get_user_pages on its memory), so later BPF reads succeed.
 * Nothing is written; the pages are the executable's own, shared with the page cache.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";

/** Chunk per read: one system call faults in this much. */
const CHUNK = 1 << 20;
/** More than any Go binary's type data; a bound, not an estimate. */
const MAX_BYTES = 64 << 20;

interface Mapping {
  start: number;
  end: number;
  offset: number;
  inode: number;
}

/** /proc/PID/maps lines of the file with inode `inode` (file offset → address). */
export function mappingsOf(maps: string, inode: number): Mapping[] {
  const out: Mapping[] = [];
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ (\d+)/.exec(line);
    if (!m || Number(m[4]) !== inode) continue;
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), offset: parseInt(m[3]!, 16), inode });
  }
  return out;
}

/**
 * Reads [fileOffset, fileOffset + size) of `exePath` as mapped in process `pid`, so its pages are
 * resident there. Returns the bytes touched; 0 when the range is not mapped or the process cannot
 * be read (the probes then only lose what such a page would have told them).
 */
export function prefaultFileRange(pid: number, exePath: string, fileOffset: number, size: number): number {
  let touched = 0;
  let fd: number | undefined;
  try {
    const inode = statSync(exePath).ino;
    const maps = mappingsOf(readFileSync(`/proc/${pid}/maps`, "utf8"), inode);
    fd = openSync(`/proc/${pid}/mem`, "r");
    const buf = Buffer.alloc(Math.min(CHUNK, size));
    const endOff = fileOffset + Math.min(size, MAX_BYTES);
    for (const m of maps) {
      const from = Math.max(fileOffset, m.offset);
      const to = Math.min(endOff, m.offset + (m.end - m.start));
      for (let off = from; off < to; off += CHUNK) {
        const n = Math.min(CHUNK, to - off);
        touched += readSync(fd, buf, 0, n, m.start + (off - m.offset));
      }
    }
  } catch {
    // Unreadable (the process exited, no ptrace access): nothing is faulted in, nothing breaks.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return touched;
}
