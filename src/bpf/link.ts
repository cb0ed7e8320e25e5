/**
 * @module bpf/link — uprobe attachment by file offset, as owned, disposable links.
 *
 * Probes are attached at a FILE offset inside the executable (func_name NULL), computed by our
 * own ELF/pclntab readers — never by letting libbpf resolve a guessed symbol name.
 *
 * Two mechanisms:
 *  - `attachUprobe`: one perf-event link per offset, created by libbpf through the perf `uprobe`
 *    PMU (or tracefs on old kernels). Works everywhere, but each link's release waits for its own
 *    RCU-tasks grace period (~150–250 ms measured on 6.18), so N links take N of them to detach.
 *  - `attachUprobeMulti`: one BPF_TRACE_UPROBE_MULTI link (kernel 6.6+) carrying every offset of
 *    one program in one file; its release unregisters them all behind ONE synchronisation
 *    (kernel/trace/bpf_trace.c, bpf_uprobe_multi_link_release). The program must have been loaded
 *    with that expected attach type (BpfProgram.setExpectedAttachType), which in turn rules out
 *    `attachUprobe` for it; features.ts `uprobeMultiSupport()` decides before load.
 */
import { closeSync, constants, openSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { TracerError, fromSystemError } from "../errors.ts";
import { checkPtr, errnoError, errnoText, libbpfMark } from "./call.ts";
import { releaseHandle, trackHandle } from "./handles.ts";
import { addr, closeConcurrently, closeFd, cstr, libcSymbols, readErrno } from "./libc.ts";
import { libbpf } from "./libbpf.ts";
import type { BpfMap, BpfProgram } from "./object.ts";
import { BPF_TRACE_UPROBE_MULTI, linkCreateUprobeMulti, MAX_UPROBE_MULTI_CNT } from "./syscall.ts";

/**
 * struct bpf_uprobe_opts, libbpf 1.1.2 (checked with offsetof): sz@0, ref_ctr_offset@8,
 * bpf_cookie@16, retprobe@24, func_name@32; sizeof = 40.
 */
const UPROBE_OPTS_SIZE = 40;
const UPROBE_OPTS_COOKIE = 16;

export interface UprobeTarget {
  /** Absolute path of the executable or shared object to probe. */
  binaryPath: string;
  /** File offset of the instruction to probe (not a virtual address). */
  fileOffset: number;
  /** Only fire in this process; all processes mapping the file when omitted. */
  pid?: number;
  /** Value the BPF program reads with bpf_get_attach_cookie() (kernel >= 5.15). */
  cookie?: bigint | number;
}

export class UprobeLink implements Disposable {
  #ptr: number;
  readonly #handle: number;

  constructor(
    readonly program: BpfProgram,
    ptr: number,
    readonly target: Readonly<UprobeTarget>,
  ) {
    this.#ptr = ptr;
    this.#handle = trackHandle(`uprobe link ${program.name} → ${describe(target)}`);
  }

  get attached(): boolean {
    return this.#ptr !== 0;
  }

  [Symbol.dispose](): void {
    if (this.#ptr === 0) return;
    const p = this.#ptr;
    this.#ptr = 0;
    this.program.object.disown(this);
    releaseHandle(this.#handle);
    // bpf_link__destroy detaches (closes the perf event / link fd) and frees; its return value
    // only reports a failed detach of an already-gone target, which leaves nothing to clean up.
    libbpf().sym.bpf_link__destroy(p);
  }
}

function describe(t: UprobeTarget): string {
  return `${t.binaryPath}+0x${t.fileOffset.toString(16)}${t.pid !== undefined ? ` (pid ${t.pid})` : ""}`;
}

/** Checks shared by both attach paths: absolute existing path, sane pid. */
function checkPathAndPid(what: string, binaryPath: string, pid: number | undefined): void {
  if (!isAbsolute(binaryPath)) {
    // libbpf (and the kernel) would resolve a relative name against something; we never want a guess.
    throw new TracerError("internal", `${what}: the binary path must be absolute`);
  }
  if (pid !== undefined && (!Number.isInteger(pid) || pid <= 0 || pid > 0x7fffffff)) {
    throw new TracerError("usage", `${what}: ${pid} is not a process id`);
  }
  try {
    statSync(binaryPath);
  } catch (e) {
    throw fromSystemError(e, binaryPath);
  }
}

function isFileOffset(o: unknown): o is number {
  return typeof o === "number" && Number.isSafeInteger(o) && o >= 0;
}

/** Attach `prog` (a loaded SEC("uprobe") program) at a file offset. */
export function attachUprobe(prog: BpfProgram, target: UprobeTarget): UprobeLink {
  prog.object.assertLoaded(`attach ${prog.name}`);
  const what = `attach ${prog.name} at ${describe(target)}`;
  if (!isFileOffset(target.fileOffset)) {
    throw new TracerError("offset_unknown", `${what}: ${target.fileOffset} is not a valid file offset`);
  }
  if (prog.expectedAttachType === BPF_TRACE_UPROBE_MULTI) {
    // The kernel would answer EINVAL (perf_event_set_bpf_prog refuses uprobe_multi programs).
    throw new TracerError("internal", `${what}: the program was loaded for uprobe_multi links; use attachUprobeMulti`);
  }
  checkPathAndPid(what, target.binaryPath, target.pid);

  const path = cstr(target.binaryPath);
  const opts = new Uint8Array(UPROBE_OPTS_SIZE);
  const dv = new DataView(opts.buffer);
  dv.setBigUint64(0, BigInt(UPROBE_OPTS_SIZE), true);
  dv.setBigUint64(UPROBE_OPTS_COOKIE, BigInt.asUintN(64, BigInt(target.cookie ?? 0)), true);
  // func_name stays NULL: the offset is absolute within the file.
  const mark = libbpfMark();
  const link = checkPtr(
    libbpf().sym.bpf_program__attach_uprobe_opts(prog.ptr, target.pid ?? -1, addr(path), target.fileOffset, addr(opts)),
    what,
    "attach_failed",
    mark,
  );
  const l = new UprobeLink(prog, link, { ...target });
  prog.object.adopt(l);
  return l;
}

export interface UprobeMultiTarget {
  /** Absolute path of the executable or shared object to probe. */
  binaryPath: string;
  /** File offsets of the instructions to probe (not virtual addresses); distinct, at least one. */
  fileOffsets: readonly number[];
  /** bpf_get_attach_cookie() value per offset (same order and length); all 0 when omitted. */
  cookies?: readonly (bigint | number)[];
  /** Only fire in this process (all its threads); all processes mapping the file when omitted. */
  pid?: number;
}

/** One uprobe_multi link: every offset of one program in one file, released as a unit. */
export class UprobeMultiLink implements Disposable {
  #fd: number;
  readonly #handle: number;

  constructor(
    readonly program: BpfProgram,
    fd: number,
    readonly target: Readonly<UprobeMultiTarget>,
  ) {
    this.#fd = fd;
    this.#handle = trackHandle(`uprobe_multi link ${program.name} → ${describeMulti(target)}`);
  }

  get attached(): boolean {
    return this.#fd >= 0;
  }

  /** How many uprobes this link holds. */
  get count(): number {
    return this.target.fileOffsets.length;
  }

  /** The link's fd (-1 once disposed); `bpftool link show` lists it as type uprobe_multi. */
  get fd(): number {
    return this.#fd;
  }

  [Symbol.dispose](): void {
    const fd = this.takeFd();
    // Closing the only reference releases the link: all its uprobes are unregistered, then one
    // uprobe_unregister_sync() waits for in-flight handlers (kernel/trace/bpf_trace.c).
    if (fd >= 0) closeFd(fd);
  }

  /**
   * Detaches this object from its fd and returns it (-1 when already disposed): the caller
   * closes it, which releases the link. LinkSet closes several links' fds at once this way.
   */
  takeFd(): number {
    if (this.#fd < 0) return -1;
    const fd = this.#fd;
    this.#fd = -1;
    this.program.object.disown(this);
    releaseHandle(this.#handle);
    return fd;
  }
}

function describeMulti(t: UprobeMultiTarget): string {
  const offs = t.fileOffsets;
  const shown = offs.slice(0, 3).map((o) => `0x${o.toString(16)}`).join(",") + (offs.length > 3 ? `,… (${offs.length} offsets)` : "");
  return `${t.binaryPath}+{${shown}}${t.pid !== undefined ? ` (pid ${t.pid})` : ""}`;
}

/** errno values link_create answers for uprobe_multi (asm-generic/errno-base.h). */
const ESRCH = 3;
const EBADF = 9;
const EINVAL = 22;

/**
 * Attach `prog` (loaded with expected attach type BPF_TRACE_UPROBE_MULTI) at every file offset
 * of `target` with ONE link. All or nothing: the kernel registers every offset or none.
 */
export function attachUprobeMulti(prog: BpfProgram, target: UprobeMultiTarget): UprobeMultiLink {
  prog.object.assertLoaded(`attach ${prog.name}`);
  const offsets = [...target.fileOffsets];
  const what = `attach ${prog.name} (uprobe_multi) at ${describeMulti({ ...target, fileOffsets: offsets })}`;
  if (offsets.length === 0) throw new TracerError("internal", `${what}: no offsets given`);
  if (offsets.length > MAX_UPROBE_MULTI_CNT) throw new TracerError("internal", `${what}: more than ${MAX_UPROBE_MULTI_CNT} offsets`);
  const bad = offsets.find((o) => !isFileOffset(o));
  if (bad !== undefined) throw new TracerError("offset_unknown", `${what}: ${bad} is not a valid file offset`);
  if (new Set(offsets).size !== offsets.length) {
    // Each copy would register its own consumer: the program would run twice per hit.
    throw new TracerError("internal", `${what}: the same offset is listed twice`);
  }
  let cookies: bigint[] | undefined;
  if (target.cookies !== undefined) {
    if (target.cookies.length !== offsets.length) {
      throw new TracerError("internal", `${what}: ${target.cookies.length} cookies for ${offsets.length} offsets`);
    }
    cookies = target.cookies.map((c) => {
      if (typeof c === "number" && !Number.isSafeInteger(c)) throw new TracerError("internal", `${what}: cookie ${c} is not an integer`);
      return BigInt(c);
    });
  }
  const type = prog.expectedAttachType;
  if (type !== BPF_TRACE_UPROBE_MULTI) {
    throw new TracerError("internal", `${what}: the program was loaded with attach type ${type}; call setExpectedAttachType(BPF_TRACE_UPROBE_MULTI) before load`);
  }
  checkPathAndPid(what, target.binaryPath, target.pid);

  const fd = linkCreateUprobeMulti({
    progFd: prog.fd,
    path: target.binaryPath,
    fileOffsets: offsets,
    ...(cookies !== undefined ? { cookies } : {}),
    pid: target.pid ?? 0,
  });
  if (fd < 0) throw multiLinkError(what, -fd, target.pid);
  const l = new UprobeMultiLink(prog, fd, { binaryPath: target.binaryPath, fileOffsets: offsets, ...(cookies ? { cookies } : {}), ...(target.pid !== undefined ? { pid: target.pid } : {}) });
  prog.object.adopt(l);
  return l;
}

function multiLinkError(what: string, errno: number, pid: number | undefined): TracerError {
  if (errno === ESRCH && pid !== undefined) {
    return new TracerError("target_not_found", `${what}: process ${pid} no longer exists`, { hint: "the target exited while beetrace was attaching; start tracing again" });
  }
  const e = errnoError(what, errno, "attach_failed");
  if (errno === EBADF) return new TracerError("attach_failed", e.message, { hint: "the path does not name a regular file" });
  if (errno === EINVAL) {
    return new TracerError("attach_failed", e.message, {
      hint: "the kernel refused an offset (outside the file, or not an instruction boundary it can probe) or lacks uprobe_multi links (Linux 6.6+)",
    });
  }
  return e;
}

/** Links disposed together, newest first (the reverse of attachment). */
export class LinkSet implements Disposable {
  readonly #links: Disposable[] = [];

  add<T extends Disposable>(link: T): T {
    this.#links.push(link);
    return link;
  }

  get size(): number {
    return this.#links.length;
  }

  [Symbol.dispose](): void {
    let first: unknown;
    // uprobe_multi links first, all at once, this set's and those of the sets inside it: each
    // release waits out a grace period in the kernel (closeConcurrently). Taken links dispose
    // as no-ops below.
    const fds: number[] = [];
    try {
      this.#takeMultiFds(fds);
    } catch (e) {
      first = e;
    }
    closeConcurrently(fds);
    for (let l = this.#links.pop(); l !== undefined; l = this.#links.pop()) {
      try {
        l[Symbol.dispose]();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }

  #takeMultiFds(into: number[]): void {
    for (const l of this.#links) {
      if (l instanceof UprobeMultiLink) {
        const fd = l.takeFd();
        if (fd >= 0) into.push(fd);
      } else if (l instanceof LinkSet) l.#takeMultiFds(into);
    }
  }
}

/**
 * A program attached to a cgroup v2 directory through a bpf_link (sock_ops for --propagate):
 * the attachment lives exactly as long as the link — nothing pinned, and a beetrace that dies
 * takes it with it when the kernel closes its fds. Several links on one cgroup run side by
 * side (link attachments are multi-attach), so tracers do not displace each other.
 */
export class CgroupLink implements Disposable {
  #ptr: number;
  readonly #handle: number;

  constructor(
    readonly program: BpfProgram,
    ptr: number,
    readonly cgroupPath: string,
  ) {
    this.#ptr = ptr;
    this.#handle = trackHandle(`cgroup link ${program.name} → ${cgroupPath}`);
  }

  get attached(): boolean {
    return this.#ptr !== 0;
  }

  [Symbol.dispose](): void {
    if (this.#ptr === 0) return;
    const p = this.#ptr;
    this.#ptr = 0;
    this.program.object.disown(this);
    releaseHandle(this.#handle);
    libbpf().sym.bpf_link__destroy(p);
  }
}

/** Attach `prog` (SEC("sockops") and the like) to the cgroup v2 directory `cgroupPath`. */
export function attachCgroup(prog: BpfProgram, cgroupPath: string): CgroupLink {
  prog.object.assertLoaded(`attach ${prog.name}`);
  const what = `attach ${prog.name} to cgroup ${cgroupPath}`;
  let fd: number;
  try {
    fd = openSync(cgroupPath, constants.O_RDONLY | constants.O_DIRECTORY); // libuv adds O_CLOEXEC
  } catch (e) {
    throw fromSystemError(e, what);
  }
  try {
    const mark = libbpfMark();
    const link = checkPtr(libbpf().sym.bpf_program__attach_cgroup(prog.ptr, fd), what, "attach_failed", mark);
    const l = new CgroupLink(prog, link, cgroupPath);
    prog.object.adopt(l);
    return l;
  } finally {
    // The link holds its own reference to the cgroup.
    closeSync(fd);
  }
}

/**
 * A program attached to a map with bpf_prog_attach (sk_msg on a sockhash): detached with
 * bpf_prog_detach2 on dispose. The map (owned by the same object) also drops the program when
 * it is freed, so even a beetrace killed before dispose leaves nothing attached.
 */
export class MapProgAttachment implements Disposable {
  #attached = true;
  readonly #handle: number;

  constructor(
    readonly program: BpfProgram,
    readonly map: BpfMap,
    readonly attachType: number,
  ) {
    this.#handle = trackHandle(`map attachment ${program.name} → ${map.name}`);
  }

  get attached(): boolean {
    return this.#attached;
  }

  [Symbol.dispose](): void {
    if (!this.#attached) return;
    this.#attached = false;
    this.program.object.disown(this);
    releaseHandle(this.#handle);
    // A failure means it is already gone (the map was freed): nothing left to release.
    libbpf().sym.bpf_prog_detach2(this.program.fd, this.map.fd, this.attachType);
  }
}

/** uapi/linux/bpf.h enum bpf_attach_type: BPF_CGROUP_SOCK_OPS 3, BPF_SK_MSG_VERDICT 7. */
export const BPF_CGROUP_SOCK_OPS = 3;
export const BPF_SK_MSG_VERDICT = 7;

/** Attach `prog` to `map` (both of one loaded object) as `attachType` (e.g. BPF_SK_MSG_VERDICT). */
export function attachToMap(prog: BpfProgram, map: BpfMap, attachType: number): MapProgAttachment {
  prog.object.assertLoaded(`attach ${prog.name}`);
  const what = `attach ${prog.name} to map ${map.name}`;
  const r = libbpf().sym.bpf_prog_attach(prog.fd, map.fd, attachType, 0);
  if (r < 0) throw errnoError(what, -r, "attach_failed");
  const a = new MapProgAttachment(prog, map, attachType);
  prog.object.adopt(a);
  return a;
}

/** Syscall numbers of pidfd_open and pidfd_getfd: 434 and 438 on every architecture (include/uapi/asm-generic/unistd.h, arch/x86/entry/syscalls/syscall_64.tbl). */
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
/** uapi/linux/bpf.h: BPF_NOEXIST. */
const BPF_NOEXIST = 1;

/**
 * Put sockets that process `pid` already holds into sockhash `map` (one of a loaded object):
 * each `fd` (the process's own number) is duplicated into this process with pidfd_getfd
 * (Linux 5.6+, ptrace access: root) and given to the map under `key` (8 bytes, little-endian);
 * our copy is closed again, the map holds the socket itself. A socket that closed meanwhile,
 * or is not an established TCP socket, is skipped. Returns how many went in and why others did not.
 */
export function addProcessSockets(map: BpfMap, pid: number, sockets: readonly { fd: number; key: bigint }[]): { added: number; skipped: string[] } {
  const c = libcSymbols();
  const skipped: string[] = [];
  if (sockets.length === 0) return { added: 0, skipped };
  const pidfd = Number(c.syscall(SYS_PIDFD_OPEN, pid, null, 0));
  if (pidfd < 0) return { added: 0, skipped: [`pidfd_open(${pid}): ${errnoText(readErrno())}`] };
  let added = 0;
  try {
    const key = new BigUint64Array(1);
    const value = new Uint32Array(1);
    for (const s of sockets) {
      // The fd travels in the pointer-typed argument slot of our fixed syscall binding (libc.ts).
      const fd = Number(c.syscall(SYS_PIDFD_GETFD, pidfd, s.fd === 0 ? null : s.fd, 0));
      if (fd < 0) {
        skipped.push(`fd ${s.fd}: pidfd_getfd: ${errnoText(readErrno())}`);
        continue;
      }
      try {
        key[0] = BigInt.asUintN(64, s.key);
        value[0] = fd;
        const r = libbpf().sym.bpf_map_update_elem(map.fd, addr(key), addr(value), BPF_NOEXIST);
        if (r < 0) skipped.push(`fd ${s.fd}: ${errnoText(-r)}`);
        else added++;
      } finally {
        closeFd(fd);
      }
    }
  } finally {
    closeFd(pidfd);
  }
  return { added, skipped };
}
