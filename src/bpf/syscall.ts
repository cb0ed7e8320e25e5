/**
 * @module bpf/syscall — the bpf(2) commands libbpf 1.1 has no API for, issued directly.
 *
 * libbpf 1.1.2 (what beetrace embeds) predates uprobe_multi links (libbpf 1.3), and its
 * bpf_link_create() copies only the option fields it knows, so BPF_LINK_CREATE with
 * BPF_TRACE_UPROBE_MULTI is filled in here byte by byte. Every offset and constant below was
 * checked against the running kernel's BTF (`bpftool btf dump file /sys/kernel/btf/vmlinux
 * format c`, union bpf_attr, kernel 6.18) with _Static_assert(offsetof(...)); the uapi layout is
 * append-only, so older kernels that have the command agree with it.
 *
 * Functions return a non-negative fd or a negative errno (the libbpf convention call.ts checks).
 */
import { TracerError } from "../errors.ts";
import { addr, cstr, libcSymbols, readErrno } from "./libc.ts";

/** __NR_bpf: arch/x86/entry/syscalls/syscall_64.tbl (321); include/uapi/asm-generic/unistd.h (280, arm64). */
const SYS_BPF: Readonly<Record<string, number>> = { x64: 321, arm64: 280 };

/** uapi/linux/bpf.h enum bpf_cmd. */
const BPF_LINK_CREATE = 28;
/** uapi/linux/bpf.h enum bpf_attach_type (kernel 6.6+). */
export const BPF_TRACE_UPROBE_MULTI = 48;
/** uapi/linux/bpf.h: link_create.uprobe_multi.flags bit for return probes (we never use it: Go returns are probed at RETs). */
export const BPF_F_UPROBE_MULTI_RETURN = 1;

/** union bpf_attr, BPF_LINK_CREATE part with link_create.uprobe_multi (kernel 6.6+). */
const LINK_CREATE = {
  prog_fd: 0,
  target_fd: 4,
  attach_type: 8,
  flags: 12,
  path: 16,
  offsets: 24,
  ref_ctr_offsets: 32,
  cookies: 40,
  cnt: 48,
  um_flags: 52,
  pid: 56,
  /** bytes we pass: up to pid, rounded to 8 (the kernel zero-extends a shorter attr) */
  size: 64,
} as const;

/** kernel/trace/bpf_trace.c: MAX_UPROBE_MULTI_CNT (1 << 20) offsets per link. */
export const MAX_UPROBE_MULTI_CNT = 1 << 20;

const EINTR = 4;
const EAGAIN = 11;

function sysBpfNumber(): number {
  const n = SYS_BPF[process.arch];
  if (n === undefined) {
    throw new TracerError("kernel_unsupported", `bpf(2) syscall number unknown for architecture ${process.arch}`, {
      hint: "beetrace supports x86-64 and arm64 Linux",
    });
  }
  return n;
}

/** bpf(cmd, attr, attr.length); the fd, or -errno. `attr` must stay referenced during the call (it is). */
function sysBpf(cmd: number, attr: Uint8Array): number {
  const r = libcSymbols().syscall(sysBpfNumber(), cmd, addr(attr), attr.length);
  return r < 0 ? -(readErrno() || EAGAIN) : r;
}

export interface UprobeMultiAttr {
  progFd: number;
  /** absolute path of the file to probe (the kernel resolves it, following symlinks) */
  path: string;
  fileOffsets: readonly number[];
  /** one per offset, or none (all 0) */
  cookies?: readonly bigint[];
  /** 0: every process mapping the file */
  pid: number;
  flags?: number;
}

/** BPF_LINK_CREATE with attach_type BPF_TRACE_UPROBE_MULTI; the link fd, or -errno. Inputs are validated by the caller. */
export function linkCreateUprobeMulti(a: UprobeMultiAttr): number {
  const path = cstr(a.path);
  const offsets = new BigUint64Array(a.fileOffsets.map((o) => BigInt(o)));
  const cookies = a.cookies === undefined ? undefined : new BigUint64Array(a.cookies.map((c) => BigInt.asUintN(64, c)));
  const attr = new Uint8Array(LINK_CREATE.size);
  const dv = new DataView(attr.buffer);
  dv.setUint32(LINK_CREATE.prog_fd, a.progFd, true);
  dv.setUint32(LINK_CREATE.target_fd, 0, true); // unused by uprobe_multi
  dv.setUint32(LINK_CREATE.attach_type, BPF_TRACE_UPROBE_MULTI, true);
  dv.setUint32(LINK_CREATE.flags, 0, true);
  dv.setBigUint64(LINK_CREATE.path, BigInt(addr(path)), true);
  dv.setBigUint64(LINK_CREATE.offsets, BigInt(addr(offsets)), true);
  dv.setBigUint64(LINK_CREATE.ref_ctr_offsets, 0n, true); // no USDT semaphores
  dv.setBigUint64(LINK_CREATE.cookies, cookies === undefined ? 0n : BigInt(addr(cookies)), true);
  dv.setUint32(LINK_CREATE.cnt, offsets.length, true);
  dv.setUint32(LINK_CREATE.um_flags, a.flags ?? 0, true);
  dv.setUint32(LINK_CREATE.pid, a.pid, true);
  let r = -EINTR;
  for (let attempt = 0; attempt < 5 && r === -EINTR; attempt++) r = sysBpf(BPF_LINK_CREATE, attr);
  void path.length;
  void offsets.length;
  void cookies?.length;
  return r;
}
