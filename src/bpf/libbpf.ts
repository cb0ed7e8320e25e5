/**
 * @module bpf/libbpf — libbpf's symbol table and how the library is found and opened.
 *
 * Load order (first that works wins; the choice is logged at debug level):
 *  1. the libbpf bundle (embedded.ts; or configureLibbpf) copied into a memfd and dlopen'ed as /proc/self/fd/N — works with a
 *     noexec $TMPDIR and leaves nothing on disk (research: bun-libbpf-spike §2b);
 *  2. dlopen of the bundle's path itself (Bun extracts embedded files to $TMPDIR);
 *  3. the system's libbpf.so.1, for development from source when no bundle is built.
 * The option-struct layouts built in object.ts/link.ts are those of libbpf 1.1.2 (checked with
 * offsetof against its headers); later libbpf versions accept them (opts carry their own size).
 */
import { readFileSync } from "node:fs";
import { TracerError } from "../errors.ts";
import { log, logLevel } from "../log.ts";
import { embedded } from "./embedded.ts";
import { ffi, type Bound, type NativeCallback } from "./ffi.ts";
import { errnoText, recordLibbpfWarning } from "./call.ts";
import { addr, cstr, cstringAt, libcSymbols, readErrno } from "./libc.ts";

const LIBBPF_DEFS = {
  libbpf_major_version: { args: [], returns: "u32" },
  libbpf_minor_version: { args: [], returns: "u32" },
  libbpf_set_print: { args: ["ptr"], returns: "ptr" },
  // (enum bpf_prog_type, enum bpf_func_id, const void *opts): 1 supported, 0 not, < 0 error.
  libbpf_probe_bpf_helper: { args: ["u32", "u32", "ptr"], returns: "i32" },
  bpf_object__open_mem: { args: ["ptr", "usize", "ptr"], returns: "ptr" },
  bpf_object__load: { args: ["ptr"], returns: "i32" },
  bpf_object__close: { args: ["ptr"], returns: "void" },
  bpf_object__btf: { args: ["ptr"], returns: "ptr" },
  bpf_object__find_program_by_name: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_object__find_map_by_name: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_program__fd: { args: ["ptr"], returns: "i32" },
  bpf_program__name: { args: ["ptr"], returns: "ptr" },
  // C `bool` argument: passed in a full register on x86-64/arm64, callee reads the low byte.
  bpf_program__set_autoload: { args: ["ptr", "i32"], returns: "i32" },
  // enum bpf_attach_type is a C int-sized enum: u32 in and out.
  bpf_program__expected_attach_type: { args: ["ptr"], returns: "u32" },
  bpf_program__set_expected_attach_type: { args: ["ptr", "u32"], returns: "i32" },
  bpf_program__attach_uprobe_opts: { args: ["ptr", "i32", "ptr", "usize", "ptr"], returns: "ptr" },
  bpf_link__destroy: { args: ["ptr"], returns: "i32" },
  bpf_map__fd: { args: ["ptr"], returns: "i32" },
  bpf_map__type: { args: ["ptr"], returns: "u32" },
  bpf_map__value_size: { args: ["ptr"], returns: "u32" },
  bpf_map__max_entries: { args: ["ptr"], returns: "u32" },
  bpf_map__set_max_entries: { args: ["ptr", "u32"], returns: "i32" },
  bpf_map__reuse_fd: { args: ["ptr", "i32"], returns: "i32" },
  bpf_map_get_next_key: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_map_lookup_elem: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_map__initial_value: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_map__set_initial_value: { args: ["ptr", "ptr", "usize"], returns: "i32" },
  bpf_map_create: { args: ["u32", "ptr", "u32", "u32", "u32", "ptr"], returns: "i32" },
  // --propagate (src/trace/propagate.ts): sock_ops on a cgroup (a link), sk_msg on a sockhash
  // (bpf_prog_attach: libbpf 1.1 has no sockmap links), a map entry written from user space.
  bpf_program__attach_cgroup: { args: ["ptr", "i32"], returns: "ptr" },
  bpf_prog_attach: { args: ["i32", "i32", "u32", "u32"], returns: "i32" },
  bpf_prog_detach2: { args: ["i32", "i32", "u32"], returns: "i32" },
  // (enum bpf_prog_type, const void *opts): 1 supported, 0 not, < 0 error.
  libbpf_probe_bpf_prog_type: { args: ["u32", "ptr"], returns: "i32" },
  bpf_map_update_elem: { args: ["i32", "ptr", "ptr", "u64"], returns: "i32" },
  // (prog_type, name, license, insns, insn_cnt, opts): a program fd or a negative errno (helper probes, features.ts).
  bpf_prog_load: { args: ["u32", "ptr", "ptr", "ptr", "usize", "ptr"], returns: "i32" },
  btf__find_by_name_kind: { args: ["ptr", "ptr", "u32"], returns: "i32" },
  btf__type_by_id: { args: ["ptr", "u32"], returns: "ptr" },
  btf__name_by_offset: { args: ["ptr", "u32"], returns: "ptr" },
} as const;

export type LibbpfSymbols = Bound<typeof LIBBPF_DEFS>;
export type LibbpfSource = "memfd" | "bundle-path" | "system";

export interface LoadedLibbpf {
  readonly sym: LibbpfSymbols;
  readonly source: LibbpfSource;
  /** What was dlopen'ed (a /proc/self/fd path for memfd). */
  readonly path: string;
  readonly version: string;
}

/** The system library's soname (Debian/Ubuntu/Fedora package libbpf 1.x as libbpf.so.1). */
const SYSTEM_LIBBPF = "libbpf.so.1";
/** linux/memfd.h: MFD_CLOEXEC, and MFD_EXEC (kernel >= 6.3, needed when vm.memfd_noexec=1). */
const MFD_CLOEXEC = 0x1;
const MFD_EXEC = 0x10;

/** undefined: not configured (ask embedded.ts); null: explicitly no bundle. */
let bundlePath: string | null | undefined;
let loaded: LoadedLibbpf | undefined;
let printCallback: NativeCallback | undefined;

/**
 * Override where the libbpf bundle is (null: use only the system libbpf). Without this call the
 * bundle from src/bpf/embedded.ts is used when it exists. Must precede the first libbpf use.
 */
export function configureLibbpf(opts: { bundlePath: string | null }): void {
  if (loaded !== undefined && opts.bundlePath !== bundlePath) {
    throw new TracerError("internal", "configureLibbpf called after libbpf was already opened");
  }
  bundlePath = opts.bundlePath;
}

/** The opened libbpf (opened on first call). */
export function libbpf(): LoadedLibbpf {
  loaded ??= openLibbpf();
  return loaded;
}

/** The bundle to try first: the configured one, else embedded.ts's (absent when not built). */
function bundleToTry(): string | undefined {
  if (bundlePath !== undefined) return bundlePath ?? undefined;
  try {
    return embedded.libbpfBundle;
  } catch (e) {
    log.debug(`no libbpf bundle: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

function openLibbpf(): LoadedLibbpf {
  const failures: string[] = [];
  const attempts: Array<[LibbpfSource, () => { sym: LibbpfSymbols; path: string }]> = [];
  const bundle = bundleToTry();
  if (bundle !== undefined) {
    const p = bundle;
    attempts.push(["memfd", () => openViaMemfd(p)]);
    attempts.push(["bundle-path", () => ({ sym: ffi().open(p, LIBBPF_DEFS).symbols, path: p })]);
  }
  attempts.push(["system", () => ({ sym: ffi().open(SYSTEM_LIBBPF, LIBBPF_DEFS).symbols, path: SYSTEM_LIBBPF })]);

  for (const [source, attempt] of attempts) {
    try {
      const { sym, path } = attempt();
      const version = `${sym.libbpf_major_version()}.${sym.libbpf_minor_version()}`;
      log.debug(`libbpf ${version} loaded from ${source} (${path})`);
      installPrintCallback(sym);
      return { sym, source, path, version };
    } catch (e) {
      if (e instanceof TracerError && e.code === "bpf_error" && e.message.startsWith("cannot initialise native calls")) throw e;
      const why = e instanceof Error ? e.message : String(e);
      failures.push(`${source}: ${why}`);
      log.debug(`libbpf via ${source} failed: ${why}`);
    }
  }
  throw new TracerError("bpf_error", "cannot load libbpf", {
    hint:
      bundle === undefined
        ? "build the embedded bundle (bun build.ts) or install the system package libbpf1"
        : "the embedded libbpf bundle could not be loaded; run with -v for the reasons",
    detail: failures,
  });
}

function openViaMemfd(path: string): { sym: LibbpfSymbols; path: string } {
  const bytes = new Uint8Array(readFileSync(path));
  const c = libcSymbols();
  const name = cstr("beetrace-libbpf");
  let fd = c.memfd_create(addr(name), MFD_CLOEXEC | MFD_EXEC);
  if (fd < 0) fd = c.memfd_create(addr(name), MFD_CLOEXEC); // kernels before 6.3 reject MFD_EXEC (EINVAL)
  if (fd < 0) throw new Error(`memfd_create: ${errnoText(readErrno())}`);
  try {
    for (let off = 0; off < bytes.length; ) {
      const n = c.write(fd, addr(bytes) + off, bytes.length - off);
      if (n <= 0) throw new Error(`write to memfd: ${errnoText(readErrno())}`);
      off += n;
    }
    const fdPath = `/proc/self/fd/${fd}`;
    return { sym: ffi().open(fdPath, LIBBPF_DEFS).symbols, path: fdPath };
  } finally {
    // The mapping made by dlopen keeps the memfd's pages; the descriptor itself is not needed.
    c.close(fd);
  }
}

/** libbpf.h enum libbpf_print_level. */
const LIBBPF_WARN = 0;
const LIBBPF_INFO = 1;
const PRINT_BUF_SIZE = 8192;

/**
 * Route libbpf's printf-style messages into our log (debug level, shown with -v) instead of
 * libbpf's default of writing to stderr, and keep warnings for error details (call.ts).
 * The callback receives a va_list, which on x86-64 and arm64 Linux is passed as a pointer, so
 * vsnprintf can format it.
 */
function installPrintCallback(sym: LibbpfSymbols): void {
  if (printCallback !== undefined) return;
  const c = libcSymbols();
  const buf = new Uint8Array(PRINT_BUF_SIZE);
  const bufAddr = addr(buf);
  printCallback = ffi().callback({ args: ["i32", "ptr", "ptr"], returns: "i32" } as const, (level, fmt, ap) => {
    try {
      if (fmt === null || ap === null) return 0;
      if (level > LIBBPF_INFO && logLevel() !== "debug") return 0; // skip formatting what nobody sees
      const n = c.vsnprintf(bufAddr, PRINT_BUF_SIZE, fmt, ap);
      if (n <= 0) return 0;
      const text = cstringAt(bufAddr) ?? "";
      for (const raw of text.split("\n")) {
        const line = raw.startsWith("libbpf: ") ? raw.slice(8) : raw; // libbpf prefixes most messages itself
        if (line.length === 0) continue;
        if (level === LIBBPF_WARN) recordLibbpfWarning(line);
        log.debug(`libbpf${level === LIBBPF_WARN ? " warning" : level === LIBBPF_INFO ? "" : " debug"}: ${line}`);
      }
      // Keep `buf` reachable from the closure for as long as the callback lives.
      void buf.length;
      return n;
    } catch {
      return 0; // never let a JS exception unwind through libbpf's C frames
    }
  });
  sym.libbpf_set_print(printCallback.address);
}

/**
 * Silence libbpf until the returned function is called: libbpf_set_print(NULL), then the
 * previous callback back. For libbpf calls made on a native thread (BpfObject.startLoad): the
 * print callback runs JS, which must only run on the JS thread. What libbpf would have said
 * meanwhile is lost, so a caller that needs the messages (a failure's diagnostics, -v) repeats
 * the call on this thread.
 */
export function suspendLibbpfPrint(): () => void {
  const sym = libbpf().sym;
  const previous = sym.libbpf_set_print(null);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    sym.libbpf_set_print(previous);
  };
}
