/**
 * @module bpf/call — libbpf's error conventions turned into TracerErrors right at the call.
 *
 * libbpf 1.x (libbpf docs, "Error Handling"): int functions return a negative errno; pointer
 * functions return NULL and set errno. `checkInt` / `checkPtr` convert both, classify the errno
 * (permission, missing kernel feature, anything else) and attach the libbpf warnings printed
 * during the call as `detail`, so "-v" shows what libbpf itself said.
 */
import { TracerError, type ErrorCode } from "../errors.ts";
import type { Ptr } from "./ffi.ts";
import { readErrno } from "./libc.ts";

/** asm-generic/errno-base.h, asm-generic/errno.h and include/linux/errno.h (ENOTSUPP, kernel-internal). */
const ERRNO: Readonly<Record<number, [name: string, text: string]>> = {
  1: ["EPERM", "operation not permitted"],
  2: ["ENOENT", "no such file or directory"],
  3: ["ESRCH", "no such process"],
  4: ["EINTR", "interrupted system call"],
  5: ["EIO", "input/output error"],
  7: ["E2BIG", "argument list too long"],
  8: ["ENOEXEC", "exec format error"],
  9: ["EBADF", "bad file descriptor"],
  11: ["EAGAIN", "resource temporarily unavailable"],
  12: ["ENOMEM", "cannot allocate memory"],
  13: ["EACCES", "permission denied"],
  14: ["EFAULT", "bad address"],
  16: ["EBUSY", "device or resource busy"],
  17: ["EEXIST", "file exists"],
  19: ["ENODEV", "no such device"],
  22: ["EINVAL", "invalid argument"],
  24: ["EMFILE", "too many open files"],
  28: ["ENOSPC", "no space left on device"],
  34: ["ERANGE", "numerical result out of range"],
  38: ["ENOSYS", "function not implemented"],
  95: ["EOPNOTSUPP", "operation not supported"],
  524: ["ENOTSUPP", "operation not supported by this kernel"],
  // libbpf's own codes (libbpf.h enum libbpf_errno, starting at 4000).
  4001: ["LIBBPF_ERRNO__FORMAT", "BPF object has an invalid ELF format"],
  4003: ["LIBBPF_ERRNO__ENDIAN", "BPF object has the wrong byte order"],
  4006: ["LIBBPF_ERRNO__RELOC", "BPF object relocation failed"],
  4007: ["LIBBPF_ERRNO__LOAD", "BPF program load failed"],
  4008: ["LIBBPF_ERRNO__VERIFY", "kernel verifier rejected the program"],
  4009: ["LIBBPF_ERRNO__PROG2BIG", "BPF program too big"],
  4010: ["LIBBPF_ERRNO__KVER", "incorrect kernel version"],
  4011: ["LIBBPF_ERRNO__PROGTYPE", "kernel does not support this program type"],
};

export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `errno ${errno}`;
}
export function errnoText(errno: number): string {
  const e = ERRNO[errno];
  return e ? `${e[1]} (${e[0]})` : `error ${errno}`;
}

export const EPERM = 1;
export const ENOENT = 2;
export const EACCES = 13;
export const EINVAL = 22;
const ENOSYS = 38;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524;
const ENOMEM = 12;

export const PERMISSION_HINT = "run as root or grant CAP_BPF,CAP_PERFMON";

// ---- libbpf's printed messages, kept briefly so a failing call can show them -----------------

const MAX_MESSAGES = 64;
const messages: string[] = [];
let messageSeq = 0;

/** Called by the libbpf print callback for each line libbpf prints at warning level. */
export function recordLibbpfWarning(line: string): void {
  messages.push(line);
  messageSeq++;
  if (messages.length > MAX_MESSAGES) messages.shift();
}

/** A position in the warning stream; pass it to `libbpfWarningsSince` after a call. */
export function libbpfMark(): number {
  return messageSeq;
}

/** Warning lines libbpf printed since `mark` (at most the last 64). */
export function libbpfWarningsSince(mark: number): string[] {
  const n = Math.min(messageSeq - mark, messages.length);
  return n > 0 ? messages.slice(messages.length - n) : [];
}

// ---- errno → TracerError ---------------------------------------------------------------------

/**
 * The TracerError for a failed native call. `what` names the operation with its context
 * ("load BPF object ring_test"); `fallback` is the code when the errno is not a permission or
 * kernel-feature problem.
 */
export function errnoError(what: string, errno: number, fallback: ErrorCode = "bpf_error", detail: string[] = []): TracerError {
  const message = `${what}: ${errnoText(errno)}`;
  const extra = (hint: string) => (detail.length > 0 ? { hint, detail } : { hint });
  if (errno === EPERM || errno === EACCES) return new TracerError("permission_denied", message, extra(PERMISSION_HINT));
  if (errno === ENOSYS || errno === EOPNOTSUPP || errno === ENOTSUPP) {
    return new TracerError("kernel_unsupported", message, extra("this kernel lacks a BPF feature beetrace needs; run 'beetrace doctor'"));
  }
  if (errno === ENOMEM) {
    return new TracerError(fallback, message, extra("the kernel refused the memory; on kernels before 5.11 raise the locked-memory limit (ulimit -l)"));
  }
  return new TracerError(fallback, message, detail.length > 0 ? { detail } : {});
}

/** Check an int result (negative errno on failure, libbpf 1.x convention). Returns `ret`. */
export function checkInt(ret: number, what: string, fallback: ErrorCode = "bpf_error", mark?: number): number {
  if (ret >= 0) return ret;
  throw errnoError(what, -ret, fallback, mark === undefined ? [] : libbpfWarningsSince(mark));
}

/**
 * Check a pointer result (NULL + errno on failure). Call it directly around the native call so
 * errno is read before anything else can change it.
 */
export function checkPtr(p: Ptr, what: string, fallback: ErrorCode = "bpf_error", mark?: number): number {
  if (p !== null && p !== 0) return p;
  const errno = readErrno() || ENOENT;
  throw errnoError(what, errno, fallback, mark === undefined ? [] : libbpfWarningsSince(mark));
}
