/**
 * @module bpf/libc — the few libc functions beetrace calls directly (memfd, mmap, clocks, errno,
 * vsnprintf for libbpf's log callback, syscall for bpf(2), pthreads for the uprobe_multi
 * thread check), opened once through the FFI adapter.
 */
import { TracerError } from "../errors.ts";
import { ffi, type Bound, type Ptr } from "./ffi.ts";

const LIBC_DEFS = {
  memfd_create: { args: ["ptr", "u32"], returns: "i32" },
  write: { args: ["i32", "ptr", "usize"], returns: "isize" },
  close: { args: ["i32"], returns: "i32" },
  dup: { args: ["i32"], returns: "i32" },
  // mmap returns MAP_FAILED ((void *)-1) on error; as i64 that is -1n, which a pointer type
  // would turn into a meaningless huge double.
  mmap: { args: ["ptr", "usize", "i32", "i32", "i32", "i64"], returns: "i64" },
  munmap: { args: ["ptr", "usize"], returns: "i32" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  getpid: { args: [], returns: "i32" },
  getpgid: { args: ["i32"], returns: "i32" },
  getpagesize: { args: [], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  vsnprintf: { args: ["ptr", "usize", "ptr", "ptr"], returns: "i32" },
  // syscall(2) is variadic; glibc implements it in assembly that only moves integer registers
  // (and reads no va_list), so binding it with a fixed integer signature is safe on x86-64/arm64.
  // Used for bpf(2) commands libbpf 1.1 lacks (syscall.ts). Returns -1 and sets errno on failure.
  syscall: { args: ["isize", "isize", "ptr", "isize"], returns: "isize" },
  // In a multi-threaded process glibc's sigprocmask changes the calling thread's mask only
  // (it is pthread_sigmask), and it is in libc.so.6 on every glibc (pthread_sigmask was in
  // libpthread before 2.32).
  sigprocmask: { args: ["i32", "ptr", "ptr"], returns: "i32" },
} as const;

export type Libc = Bound<typeof LIBC_DEFS>;

let libc: Libc | undefined;

/** libc, opened on first use ("libc.so.6" is glibc's soname on every glibc distribution). */
export function libcSymbols(): Libc {
  if (libc !== undefined) return libc;
  try {
    libc = ffi().open("libc.so.6", LIBC_DEFS).symbols;
  } catch (e) {
    if (e instanceof TracerError) throw e;
    throw new TracerError("bpf_error", `cannot open libc.so.6: ${e instanceof Error ? e.message : String(e)}`, {
      hint: "beetrace needs glibc (2.17 or newer)",
      cause: e,
    });
  }
  return libc;
}

/** The calling thread's errno. Read it immediately after the failing call: any later libc call may change it. */
export function readErrno(): number {
  const loc = libcSymbols().__errno_location();
  if (loc === null || loc === 0) return 0;
  return new DataView(ffi().wrap(loc, 4)).getInt32(0, true);
}

const encoder = new TextEncoder();

/** A NUL-terminated UTF-8 copy of `s`. Keep the returned array referenced while C may read it. */
export function cstr(s: string): Uint8Array {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** Address of `view` for passing as a pointer argument (the caller keeps `view` alive). */
export function addr(view: ArrayBufferView): number {
  return ffi().addressOf(view);
}

/** A C string at `p`, or undefined for NULL. */
export function cstringAt(p: Ptr): string | undefined {
  if (p === null || p === 0) return undefined;
  return ffi().readCString(p);
}

/** <sys/mman.h> / asm-generic/mman-common.h values (identical on x86-64 and arm64). */
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;

let pageSize: number | undefined;
/** The kernel page size (4 KiB on x86-64; 4, 16 or 64 KiB on arm64). */
export function systemPageSize(): number {
  pageSize ??= libcSymbols().getpagesize();
  return pageSize;
}

/** mmap(2) of `fd`; returns the address or the errno (as a negative number). */
export function mmapFd(length: number, prot: number, fd: number, offset: number): number {
  const r = libcSymbols().mmap(null, length, prot, MAP_SHARED, fd, BigInt(offset));
  if (r === -1n) return -readErrno();
  return Number(r);
}

export function munmap(address: number, length: number): void {
  libcSymbols().munmap(address, length);
}

export function closeFd(fd: number): void {
  if (fd >= 0) libcSymbols().close(fd);
}

/** A second fd for the same open file (a BPF map that must outlive the object that created it); -1 on failure (errno set). */
export function dupFd(fd: number): number {
  return libcSymbols().dup(fd);
}

/** asm-generic/signal-defs.h: how for sigprocmask. */
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
/** glibc's sigset_t: 1024 bits (sysdeps/unix/sysv/linux/bits/types/__sigset_t.h). */
const SIGSET_BYTES = 128;

/**
 * Run `fn` with every signal blocked on this thread, then restore the mask (and let what came
 * meanwhile be delivered). The BPF verifier gives up with EAGAIN when a signal is pending for
 * the loading thread (kernel/bpf/verifier.c, do_check), and libbpf retries a program only five
 * times: a sampling profiler, or a burst of signals while a 10-20 ms program is verified, then
 * fails the whole start-up. A signal sent to the process meanwhile goes to one of the runtime's
 * other threads (SIGINT and SIGTERM included), so a stop request is not lost; SIGKILL and SIGSTOP
 * cannot be blocked.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const c = libcSymbols();
  const all = new Uint8Array(SIGSET_BYTES).fill(0xff);
  const old = new Uint8Array(SIGSET_BYTES);
  if (c.sigprocmask(SIG_BLOCK, addr(all), addr(old)) !== 0) return fn();
  try {
    return fn();
  } finally {
    c.sigprocmask(SIG_SETMASK, addr(old), null);
  }
}

const DL_DEFS = {
  dlsym: { args: ["ptr", "ptr"], returns: "ptr" },
  dlopen: { args: ["ptr", "i32"], returns: "ptr" },
  dlclose: { args: ["ptr"], returns: "i32" },
} as const;
let dl: Bound<typeof DL_DEFS> | undefined;
/** glibc bits/dlfcn.h: RTLD_LAZY, and RTLD_NOLOAD (only return a library already loaded). */
const RTLD_LAZY = 0x1;
const RTLD_NOLOAD = 0x4;

/**
 * Address of a symbol as this process resolved it (dlsym(RTLD_DEFAULT, name)), or undefined.
 * dlsym lives in libdl.so.2 on glibc < 2.34 and libdl.so.2 still exports it on newer glibc.
 */
export function symbolAddress(name: string): number | undefined {
  dl ??= ffi().open("libdl.so.2", DL_DEFS).symbols;
  const n = cstr(name);
  const p = dl.dlsym(null /* RTLD_DEFAULT */, addr(n));
  return p === null || p === 0 ? undefined : p;
}

/**
 * Address of `name` in the library already loaded from `libraryPath` (the runtime's FFI binds
 * symbols as JS functions and does not give their addresses), or undefined. glibc matches an
 * already-loaded library by the name it was opened with before it opens any file, so this works
 * for a library loaded from /proc/self/fd/N after that descriptor was closed.
 */
export function symbolAddressIn(libraryPath: string, name: string): number | undefined {
  dl ??= ffi().open("libdl.so.2", DL_DEFS).symbols;
  const path = cstr(libraryPath);
  const handle = dl.dlopen(addr(path), RTLD_LAZY | RTLD_NOLOAD);
  if (handle === null || handle === 0) return undefined;
  try {
    const n = cstr(name);
    const p = dl.dlsym(handle, addr(n));
    return p === null || p === 0 ? undefined : p;
  } finally {
    dl.dlclose(handle); // drops the reference NOLOAD took; the library stays loaded
  }
}

// ---- a native thread, for probes that must fire on a thread other than ours ---------------

const THREAD_DEFS = {
  pthread_create: { args: ["ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  // pthread_t is `unsigned long` on Linux (glibc sysdeps/nptl/bits/pthreadtypes.h): 8 bytes on 64-bit.
  pthread_join: { args: ["u64", "ptr"], returns: "i32" },
} as const;
let threads: Bound<typeof THREAD_DEFS> | undefined;

/** pthread_create/join: in libc.so.6 since glibc 2.34, in libpthread.so.0 before. */
function threadSymbols(): Bound<typeof THREAD_DEFS> {
  if (threads !== undefined) return threads;
  let first: unknown;
  for (const lib of ["libc.so.6", "libpthread.so.0"]) {
    try {
      threads = ffi().open(lib, THREAD_DEFS).symbols;
      return threads;
    } catch (e) {
      if (e instanceof TracerError) throw e;
      first ??= e;
    }
  }
  throw new TracerError("bpf_error", `cannot find pthread_create in libc.so.6 or libpthread.so.0: ${first instanceof Error ? first.message : String(first)}`, {
    hint: "beetrace needs glibc (2.17 or newer)",
    cause: first,
  });
}

/**
 * close(2) every fd of `fds` at once, each on a new OS thread (libc's close as the thread's start
 * routine: its int argument arrives in the first argument register), and return when all are
 * closed. Releasing a uprobe_multi link waits in the kernel for handlers still running
 * (uprobe_unregister_sync: an RCU tasks-trace grace period, 40-60 ms each here): one link after
 * the other, stopping a tracer with six links took ~330 ms. What no thread could be started for
 * is closed on this thread.
 */
export function closeConcurrently(fds: readonly number[]): void {
  const fn = fds.length > 1 ? symbolAddress("close") : undefined;
  if (fn === undefined) {
    for (const fd of fds) closeFd(fd);
    return;
  }
  const t = threadSymbols();
  const ids = new BigUint64Array(fds.length);
  const base = addr(ids);
  const started: number[] = [];
  for (let i = 0; i < fds.length; i++) {
    if (fds[i]! < 0) continue;
    if (t.pthread_create(base + 8 * i, null, fn, fds[i]!) === 0) started.push(i);
    else closeFd(fds[i]!);
  }
  for (const i of started) t.pthread_join(ids[i]!, null);
}

const MASKED_ATTR_DEFS = {
  pthread_attr_init: { args: ["ptr"], returns: "i32" },
  pthread_attr_destroy: { args: ["ptr"], returns: "i32" },
  pthread_attr_setsigmask_np: { args: ["ptr", "ptr"], returns: "i32" },
} as const;
/** sizeof(pthread_attr_t): 56 on x86-64 and 64 on arm64 glibc (sysdeps/.../bits/pthreadtypes-arch.h); 64 covers both. */
const PTHREAD_ATTR_BYTES = 64;
let maskedAttr: Bound<typeof MASKED_ATTR_DEFS> | null | undefined;

/** pthread_attr_setsigmask_np and its companions (glibc 2.32+: libc.so.6 from 2.34, libpthread.so.0 before); null without it. */
function maskedAttrSymbols(): Bound<typeof MASKED_ATTR_DEFS> | undefined {
  if (maskedAttr === undefined) {
    maskedAttr = null;
    for (const lib of ["libc.so.6", "libpthread.so.0"]) {
      try {
        maskedAttr = ffi().open(lib, MASKED_ATTR_DEFS).symbols;
        break;
      } catch (e) {
        if (e instanceof TracerError) throw e;
      }
    }
  }
  return maskedAttr ?? undefined;
}

/** A native thread started by startNativeThread. */
export interface NativeThread {
  /** Wait for the thread to end; its start routine's return value (64 bits, as C returned it in the return register). Once only. */
  join(): bigint;
}

/**
 * Start the C function at `fn` on a NEW OS thread, as its start routine with argument `arg`,
 * and return without waiting; undefined when no thread could be started, or not with every
 * signal blocked (glibc < 2.32 has no pthread_attr_setsigmask_np: callers then do the work on
 * this thread). Blocked, signals for the process stay with the runtime's threads, and the BPF
 * verifier, which gives up with EAGAIN when a signal is pending for the thread that loads (see
 * withSignalsBlocked), is not interrupted.
 * No JS may run on that thread: `fn` must need nothing from us but its one argument, and must
 * not call back into JS (libbpf's print callback, say).
 */
export function startNativeThread(fn: number, arg: number): NativeThread | undefined {
  const t = threadSymbols();
  const m = maskedAttrSymbols();
  if (m === undefined) return undefined;
  // The mask goes in the thread's attributes, not on this thread around pthread_create: with
  // this thread's signals blocked, a thread waiting for it to take a signal (JSC suspends the
  // JS thread with one, for its sampling profiler) could wait on it while pthread_create waited
  // on a lock that other thread held: `bun --cpu-prof` hung that way (tests/e2e/signals.test.ts).
  const attr = new Uint8Array(PTHREAD_ATTR_BYTES);
  if (m.pthread_attr_init(addr(attr)) !== 0) return undefined;
  const id = new BigUint64Array(1);
  let rc: number;
  try {
    const all = new Uint8Array(SIGSET_BYTES).fill(0xff);
    if (m.pthread_attr_setsigmask_np(addr(attr), addr(all)) !== 0) return undefined;
    rc = t.pthread_create(addr(id), addr(attr), fn, arg);
  } finally {
    m.pthread_attr_destroy(addr(attr));
  }
  if (rc !== 0) return undefined;
  let joined = false;
  return {
    join(): bigint {
      if (joined) throw new TracerError("internal", "a native thread was joined twice");
      joined = true;
      const ret = new BigUint64Array(1);
      const err = t.pthread_join(id[0]!, addr(ret));
      if (err !== 0) throw new TracerError("internal", `pthread_join failed with error number ${err}`);
      return ret[0]!;
    },
  };
}

/**
 * Run the C function at `fn` once on a NEW OS thread, as its start routine with argument `arg`,
 * and wait for it to end. Returns 0, or the error number pthread_create/pthread_join returned
 * (they return it rather than setting errno). No JS runs on that thread: `fn` must be a native
 * function that needs nothing from us but its one integer/pointer argument.
 */
export function runOnNewThread(fn: number, arg: number): number {
  const t = threadSymbols();
  const id = new BigUint64Array(1);
  const rc = t.pthread_create(addr(id), null, fn, arg);
  if (rc !== 0) return rc;
  // The start routine's return value is not ours to interpret: retval NULL.
  return t.pthread_join(id[0]!, null);
}
