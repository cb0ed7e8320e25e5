/**
 * @module target/input — opening the files beetrace reads (Go binaries, capture files, offsets
 * files) so that no input can make it read without bound.
 *
 * Every input must be a regular file: a FIFO, a character device (/dev/zero), a socket or a
 * directory is refused with `not_regular_file` before a single byte is read. The file is opened
 * with O_NONBLOCK so that opening a FIFO with no writer does not hang (the flag changes nothing
 * for regular files), and checked with fstat on the opened descriptor (no check-then-open race).
 * Sizes are taken from that fstat: a file that grows while it is read (a capture still being
 * written) is read up to the size it had when opened, so an endless file is read within a bound.
 *
 * Whole-file reads are capped by the caller (`maxBytes`); binaries are mapped instead of read
 * (mapRegularFile): with a read-only mapping only the pages a reader touches are resident, so
 * `inspect` on a 60 MB binary does not need a 60 MB buffer.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";
import { PROT_READ, mmapFd, munmap } from "../bpf/libc.ts";
import { ffi } from "../bpf/ffi.ts";

export interface OpenedFile {
  fd: number;
  /** Size in bytes when opened */
  size: number;
}

/** What kind of non-regular file an fstat result describes, for the message. */
function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Open `path` read-only, refusing anything but a regular file. `what` names the input in
 * messages ("capture file", "binary"); `hint` says what to pass instead.
 */
export function openRegularFile(path: string, what: string, hint: string): OpenedFile {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    if ((e as { code?: unknown }).code === "EISDIR") throw notRegular(path, what, "a directory", hint);
    throw fromSystemError(e, path);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path, what, kindOf(st), hint);
    return { fd, size: st.size };
  } catch (e) {
    closeQuietly(fd);
    throw e instanceof TracerError ? e : fromSystemError(e, path);
  }
}

function notRegular(path: string, what: string, kind: string, hint: string): TracerError {
  return new TracerError("not_regular_file", `${path} is ${kind}, not a regular file (${what})`, { hint });
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing useful to report: the data was already read (or the read reported its error)
  }
}

/** Read up to `length` bytes at `position` into `buf[offset…]`; fewer only at the end of the file. */
export function readFully(fd: number, buf: Uint8Array, offset: number, length: number, position: number, path: string): number {
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = readSync(fd, buf, offset + done, length - done, position + done);
    } catch (e) {
      if ((e as { code?: unknown }).code === "EINTR" || (e as { code?: unknown }).code === "EAGAIN") continue;
      throw fromSystemError(e, `read ${path}`);
    }
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** The whole of a regular file of at most `maxBytes` bytes (a larger file is refused, unread). */
export function readRegularFile(path: string, what: string, maxBytes: number, hint: string): Uint8Array {
  const f = openRegularFile(path, what, hint);
  try {
    if (f.size > maxBytes) {
      throw new TracerError("io_error", `${path} is ${f.size} bytes; a ${what} is at most ${maxBytes} bytes`, { hint });
    }
    const buf = new Uint8Array(f.size);
    const n = readFully(f.fd, buf, 0, f.size, 0, path);
    return n === f.size ? buf : buf.subarray(0, n);
  } finally {
    closeQuietly(f.fd);
  }
}

/**
 * The bytes of a regular file, mapped read-only when the runtime can (mmap through the FFI
 * layer, src/bpf/libc.ts: PROT_READ on an O_RDONLY descriptor, so it also works on a running
 * executable and a read-only file, where Bun.mmap — which opens O_RDWR — fails with ETXTBSY or
 * EACCES), else read whole (at most `maxBytes`). The mapping is removed when the garbage
 * collector frees its ArrayBuffer — which happens only once no view of it (subarray, DataView)
 * is left, so no reader can touch unmapped memory — so `attach --exe` following a service
 * across many restarts does not accumulate mappings. A file truncated by another process while
 * mapped would fault; executables being run cannot be truncated.
 */
export function mapRegularFile(path: string, what: string, maxBytes: number, hint: string, opts: MapOptions = {}): Uint8Array {
  const f = openRegularFile(path, what, hint);
  try {
    if (f.size > maxBytes) {
      throw new TracerError("io_error", `${path} is ${f.size} bytes; a ${what} is at most ${maxBytes} bytes`, { hint });
    }
    if (f.size === 0) return new Uint8Array(0);
    const mapped = tryMap(f.fd, f.size);
    if (mapped !== undefined) return mapped;
    // Reading fallback: a file whose head shows it is not what we read need not be read whole.
    if (opts.worthReading !== undefined && f.size > HEAD_BYTES) {
      const head = new Uint8Array(HEAD_BYTES);
      const got = readFully(f.fd, head, 0, HEAD_BYTES, 0, path);
      if (!opts.worthReading(head.subarray(0, got))) return head.subarray(0, got);
    }
    const buf = new Uint8Array(f.size);
    const n = readFully(f.fd, buf, 0, f.size, 0, path);
    return n === f.size ? buf : buf.subarray(0, n);
  } finally {
    closeQuietly(f.fd);
  }
}

export interface MapOptions {
  /**
   * For the reading fallback: false when the first bytes show the file is not of the expected
   * kind; then only those bytes are returned (the parser rejects them with its own message).
   */
  worthReading?: (head: Uint8Array) => boolean;
}

/** Bytes read to decide whether a file is worth reading whole (the reading fallback). */
const HEAD_BYTES = 64 * 1024;

/** munmap of a mapping whose ArrayBuffer was collected (see mapRegularFile). */
const unmapWhenCollected = new FinalizationRegistry<{ addr: number; size: number }>((m) => {
  try {
    munmap(m.addr, m.size);
  } catch {
    // Nothing to do: at worst the mapping stays until exit.
  }
});

/** Read-only shared mapping of the whole file, or undefined when the runtime cannot map. */
function tryMap(fd: number, size: number): Uint8Array | undefined {
  try {
    const addr = mmapFd(size, PROT_READ, fd, 0);
    if (addr <= 0) return undefined;
    const buf = ffi().wrap(addr, size);
    unmapWhenCollected.register(buf, { addr, size });
    return new Uint8Array(buf);
  } catch {
    // No FFI (e.g. Deno without --allow-ffi): fall back to reading.
    return undefined;
  }
}
