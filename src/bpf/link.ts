/**
 * @module bpf/link — uprobe attachment by file offset, as owned, disposable links.
 *
 * Probes are attached at a FILE offset inside the executable (func_name NULL), computed by our
 * own ELF/pclntab readers — never by letting libbpf resolve a guessed symbol name. libbpf then
 * creates the probe through the perf `uprobe` PMU (or tracefs on old kernels).
 */
import { statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { TracerError, fromSystemError } from "../errors.ts";
import { checkPtr, libbpfMark } from "./call.ts";
import { releaseHandle, trackHandle } from "./handles.ts";
import { addr, cstr } from "./libc.ts";
import { libbpf } from "./libbpf.ts";
import type { BpfProgram } from "./object.ts";

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

/** Attach `prog` (a loaded SEC("uprobe") program) at a file offset. */
export function attachUprobe(prog: BpfProgram, target: UprobeTarget): UprobeLink {
  prog.object.assertLoaded(`attach ${prog.name}`);
  const what = `attach ${prog.name} at ${describe(target)}`;
  if (!isAbsolute(target.binaryPath)) {
    // libbpf would search $PATH and library dirs for a bare name; we never want a guess.
    throw new TracerError("internal", `${what}: the binary path must be absolute`);
  }
  if (!Number.isSafeInteger(target.fileOffset) || target.fileOffset < 0) {
    throw new TracerError("offset_unknown", `${what}: ${target.fileOffset} is not a valid file offset`);
  }
  if (target.pid !== undefined && (!Number.isInteger(target.pid) || target.pid <= 0)) {
    throw new TracerError("usage", `${what}: ${target.pid} is not a process id`);
  }
  try {
    statSync(target.binaryPath);
  } catch (e) {
    throw fromSystemError(e, target.binaryPath);
  }

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
    for (let l = this.#links.pop(); l !== undefined; l = this.#links.pop()) {
      try {
        l[Symbol.dispose]();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }
}
