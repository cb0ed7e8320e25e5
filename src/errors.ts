/**
 * @module errors — the one error type every layer throws or returns.
 *
 * A TracerError carries a machine-readable `code`, a one-line `message`, an optional
 * `hint` (how to fix it) and optional long `detail` (e.g. the BPF verifier log, shown with -v).
 * Only src/main.ts turns an error into output and an exit code (see EXIT_CODES).
 */

export type ErrorCode =
  // command line and environment
  | "usage"
  // reading files and binaries
  | "file_not_found"
  | "permission_denied"
  | "io_error"
  | "not_regular_file"
  | "unrecognized_format"
  | "not_go_binary"
  | "corrupt_binary"
  | "unsupported_go_version"
  | "unsupported_arch"
  | "symbol_not_found"
  | "offset_unknown"
  | "corrupt_capture"
  // targets and kernel
  | "target_not_found"
  | "already_traced"
  | "kernel_unsupported"
  | "verifier_rejected"
  | "attach_failed"
  | "nothing_attached"
  | "bpf_error"
  // output
  | "output_failed"
  // an invariant of our own broke
  | "internal";

/**
 * Documented exit codes, one per kind of failure (README "Exit codes").
 * 0 is success; 1 is reserved for unexpected crashes (should never happen).
 */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  usage: 2,
  file_not_found: 3,
  permission_denied: 4,
  io_error: 5,
  not_regular_file: 6,
  unrecognized_format: 10,
  not_go_binary: 11,
  corrupt_binary: 12,
  unsupported_go_version: 13,
  unsupported_arch: 14,
  symbol_not_found: 15,
  offset_unknown: 16,
  corrupt_capture: 17,
  target_not_found: 20,
  already_traced: 21,
  kernel_unsupported: 22,
  verifier_rejected: 23,
  attach_failed: 24,
  nothing_attached: 25,
  bpf_error: 26,
  output_failed: 30,
  internal: 70,
};

export interface TracerErrorExtra {
  hint?: string;
  cause?: unknown;
  /** Long output (verifier log, list of problems); printed only with -v. */
  detail?: string[];
}

export class TracerError extends Error {
  override name = "TracerError";
  readonly hint: string | undefined;
  readonly detail: string[] | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    extra: TracerErrorExtra = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.hint = extra.hint;
    this.detail = extra.detail;
  }

  /** Same error with context prepended: "open /x: <message>". */
  withContext(context: string): TracerError {
    const e = new TracerError(this.code, `${context}: ${this.message}`, {
      hint: this.hint,
      cause: this.cause,
      detail: this.detail,
    });
    return e;
  }
}

export function isTracerError(e: unknown): e is TracerError {
  return e instanceof TracerError;
}

/** Turn an fs/syscall error (ENOENT, EACCES, ...) into a TracerError naming `what`. */
export function fromSystemError(e: unknown, what: string): TracerError {
  if (e instanceof TracerError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case "ENOENT":
      return new TracerError("file_not_found", `${what}: no such file`, {
        hint: "check the path (for a running process, commands that trace or inspect also take --pid N)",
        cause: e,
      });
    case "EACCES":
    case "EPERM":
      return new TracerError("permission_denied", `${what}: permission denied`, {
        hint: "run as root (sudo), or grant read access to the file",
        cause: e,
      });
    case "EISDIR":
      return new TracerError("io_error", `${what}: is a directory`, {
        hint: "pass the path of an executable file",
        cause: e,
      });
    default: {
      const msg = e instanceof Error ? e.message : String(e);
      return new TracerError("io_error", `${what}: ${msg}`, { cause: e });
    }
  }
}
