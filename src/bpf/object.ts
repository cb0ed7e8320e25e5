/**
 * @module bpf/object — an owned libbpf BPF object: open from bytes, configure (rodata
 * constants, map sizes), load, look up programs and maps, read .bss counters, close.
 *
 * Lifecycle: `BpfObject.open(bytes, name)` → `setConst` / `setMapMaxEntries` → `load()` →
 * `program()` / `map()` / `bss()` → dispose (`using obj = BpfObject.open(...)`). Links attached
 * from this object's programs are adopted by it and destroyed first when it is disposed.
 */
import { TracerError } from "../errors.ts";
import { ffi } from "./ffi.ts";
import { checkInt, checkPtr, errnoError, errnoText, libbpfMark, libbpfWarningsSince } from "./call.ts";
import { releaseHandle, trackHandle } from "./handles.ts";
import { missingHelper } from "./verifier-log.ts";
import { addr, cstr, cstringAt, mmapFd, munmap, PROT_READ, startNativeThread, symbolAddressIn, systemPageSize, withSignalsBlocked } from "./libc.ts";
import { libbpf, suspendLibbpfPrint, type LibbpfSymbols } from "./libbpf.ts";
import { logLevel } from "../log.ts";

/** A global variable of a data section, located through the object's BTF. */
export interface SectionVar {
  readonly name: string;
  /** Byte offset inside the section (fixed up by libbpf at open; clang emits 0). */
  readonly offset: number;
  readonly size: number;
}

/** include/uapi/linux/btf.h: BTF_KIND_DATASEC; struct btf_type is {name_off, info, size} (12 bytes), vlen = info & 0xffff. */
const BTF_KIND_DATASEC = 15;
const BTF_TYPE_SIZE = 12;
/** struct btf_var_secinfo {type, offset, size}: 12 bytes. */
const BTF_VAR_SECINFO_SIZE = 12;
/** asm-generic/errno-base.h */
const EAGAIN = 11;
/** include/uapi/linux/bpf.h enum bpf_map_type: BPF_MAP_TYPE_RINGBUF. */
export const BPF_MAP_TYPE_RINGBUF = 27;

/**
 * struct bpf_object_open_opts, libbpf 1.1.2 (checked with offsetof): sz@0, object_name@8,
 * kernel_log_buf@56, kernel_log_size@64, kernel_log_level@72; sizeof = 80.
 */
const OPEN_OPTS_SIZE = 80;
const OPEN_OPTS_OBJECT_NAME = 8;
const OPEN_OPTS_LOG_BUF = 56;
const OPEN_OPTS_LOG_SIZE = 64;
/**
 * Verifier log buffer. With kernel_log_level 0 libbpf asks for no log on the first attempt and,
 * when a program fails, retries it at level 1 into this buffer. Kernels >= 6.4 keep the tail
 * (where the error is) when the log is longer.
 */
const VERIFIER_LOG_SIZE = 1 << 20;

export type ConstValue = number | bigint | boolean;

export class BpfProgram {
  constructor(
    readonly object: BpfObject,
    /** struct bpf_program * */
    readonly ptr: number,
    readonly name: string,
  ) {}

  /** The program's fd (only after load). */
  get fd(): number {
    return checkInt(libbpf().sym.bpf_program__fd(this.ptr), `program ${this.name}: fd`);
  }

  /** Exclude (or re-include) the program from load, e.g. when its offsets are unknown. Before load only. */
  setAutoload(on: boolean): void {
    this.object.assertNotLoaded(`setAutoload(${this.name})`);
    checkInt(libbpf().sym.bpf_program__set_autoload(this.ptr, on ? 1 : 0), `program ${this.name}: set autoload`);
  }

  /**
   * The attach type the program is loaded with (uapi enum bpf_attach_type). SEC("uprobe") gives 0;
   * BPF_TRACE_UPROBE_MULTI (syscall.ts) makes it attachable only through uprobe_multi links —
   * the kernel then refuses it as a perf-event uprobe — so the choice is made before load.
   */
  get expectedAttachType(): number {
    return libbpf().sym.bpf_program__expected_attach_type(this.ptr);
  }

  setExpectedAttachType(attachType: number): void {
    this.object.assertNotLoaded(`setExpectedAttachType(${this.name})`);
    if (!Number.isInteger(attachType) || attachType < 0 || attachType > 0xffffffff) {
      throw new TracerError("internal", `program ${this.name}: ${attachType} is not an attach type`);
    }
    checkInt(libbpf().sym.bpf_program__set_expected_attach_type(this.ptr, attachType), `program ${this.name}: set expected attach type ${attachType}`);
  }
}

export class BpfMap {
  constructor(
    readonly object: BpfObject,
    /** struct bpf_map * */
    readonly ptr: number,
    readonly name: string,
  ) {}

  /** The map's fd (only after load). */
  get fd(): number {
    return checkInt(libbpf().sym.bpf_map__fd(this.ptr), `map ${this.name}: fd`);
  }
  get type(): number {
    return libbpf().sym.bpf_map__type(this.ptr);
  }
  get valueSize(): number {
    return libbpf().sym.bpf_map__value_size(this.ptr);
  }
  get maxEntries(): number {
    return libbpf().sym.bpf_map__max_entries(this.ptr);
  }

  /** Write one entry from user space (BPF_ANY): key and value bytes exactly the map's sizes. */
  update(key: Uint8Array, value: Uint8Array): void {
    checkInt(libbpf().sym.bpf_map_update_elem(this.fd, addr(key), addr(value), 0), `map ${this.name}: update`);
  }
}

/** struct bee_slot_head {__u64 claims; __u64 owner;} at the start of every slot (bpf/include/slots.bpf.h). */
const SLOT_OWNER_OFFSET = 8;

/** What #logBuf becomes once loaded (never handed to libbpf again). */
const EMPTY_LOG = new Uint8Array(0);

export class BpfObject implements Disposable {
  #ptr: number;
  #loaded = false;
  /** Set between startLoad() and its finish(): a native thread is using the object. */
  #pendingLoad: { finish(): boolean } | undefined;
  #closed = false;
  readonly #handle: number;
  // Buffers libbpf keeps pointers to: bpf_object__open_mem does not copy the ELF image
  // (libbpf 1.1 stores obj_buf as given), and the verifier log buffer is used at load.
  readonly #keepAlive: Uint8Array[];
  #logBuf: Uint8Array;
  readonly #vars = new Map<string, Map<string, SectionVar>>();
  readonly #children: Disposable[] = [];
  #bss: { address: number; length: number; view: DataView; handle: number } | undefined;

  private constructor(
    readonly name: string,
    ptr: number,
    keepAlive: Uint8Array[],
    logBuf: Uint8Array,
  ) {
    this.#ptr = ptr;
    this.#keepAlive = keepAlive;
    this.#logBuf = logBuf;
    this.#handle = trackHandle(`bpf object ${name}`);
  }

  /** Open (parse, not load) a BPF ELF object from memory. `name` is used in messages and by the kernel. */
  static open(bytes: Uint8Array, name: string): BpfObject {
    const lib = libbpf();
    const image = bytes.slice(); // private copy: libbpf reads it until load, and callers may reuse theirs
    const nameBuf = cstr(name);
    const logBuf = new Uint8Array(VERIFIER_LOG_SIZE);
    const opts = new Uint8Array(OPEN_OPTS_SIZE);
    const dv = new DataView(opts.buffer);
    dv.setBigUint64(0, BigInt(OPEN_OPTS_SIZE), true);
    dv.setBigUint64(OPEN_OPTS_OBJECT_NAME, BigInt(addr(nameBuf)), true);
    dv.setBigUint64(OPEN_OPTS_LOG_BUF, BigInt(addr(logBuf)), true);
    dv.setBigUint64(OPEN_OPTS_LOG_SIZE, BigInt(logBuf.length), true);
    const mark = libbpfMark();
    if (image.length === 0) throw new TracerError("bpf_error", `open BPF object ${name}: the object is empty`);
    const ptr = checkPtr(
      lib.sym.bpf_object__open_mem(addr(image), image.length, addr(opts)),
      `open BPF object ${name}`,
      "bpf_error",
      mark,
    );
    return new BpfObject(name, ptr, [image, nameBuf, opts], logBuf);
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  /** @internal */
  assertOpen(what: string): void {
    if (this.#closed) throw new TracerError("internal", `BPF object ${this.name}: ${what} after close`);
    if (this.#pendingLoad) throw new TracerError("internal", `BPF object ${this.name}: ${what} while it loads on another thread`);
  }
  /** @internal */
  assertNotLoaded(what: string): void {
    this.assertOpen(what);
    if (this.#loaded) throw new TracerError("internal", `BPF object ${this.name}: ${what} must happen before load()`);
  }
  /** @internal */
  assertLoaded(what: string): void {
    this.assertOpen(what);
    if (!this.#loaded) throw new TracerError("internal", `BPF object ${this.name}: ${what} needs load() first`);
  }

  /** Variables of a data section (".rodata", ".bss", ".data") by name, from the object's BTF. */
  sectionVars(section: string): ReadonlyMap<string, SectionVar> {
    this.assertOpen(`variables of ${section}`);
    let vars = this.#vars.get(section);
    if (vars === undefined) {
      vars = readDatasec(libbpf().sym, this.#ptr, section, this.name);
      this.#vars.set(section, vars);
    }
    return vars;
  }

  /**
   * Set a `volatile const` global before load. The verifier then treats it as a constant (and
   * prunes branches on it). Throws if the object has no such constant or the value does not fit.
   */
  /** Whether the object has a `volatile const` global `name` (shared headers give every object some). */
  hasConst(name: string): boolean {
    return this.sectionVars(".rodata").has(name);
  }

  /** Whether the object has a .bss counter `name`. */
  hasCounter(name: string): boolean {
    return this.sectionVars(".bss").has(name);
  }

  setConst(name: string, value: ConstValue): void {
    this.assertNotLoaded(`setConst(${name})`);
    const v = this.sectionVars(".rodata").get(name);
    if (v === undefined) {
      const known = [...this.sectionVars(".rodata").keys()].join(", ") || "none";
      throw new TracerError("internal", `BPF object ${this.name} has no constant '${name}' (its constants: ${known})`);
    }
    const map = this.#internalMap(".rodata");
    const sizeBuf = new BigUint64Array(1);
    const image = checkPtr(libbpf().sym.bpf_map__initial_value(map, addr(sizeBuf)), `${this.name}: .rodata image`);
    const imageSize = Number(sizeBuf[0]);
    if (v.offset + v.size > imageSize) {
      throw new TracerError("internal", `BPF object ${this.name}: constant '${name}' at ${v.offset}+${v.size} lies outside .rodata (${imageSize} bytes)`);
    }
    const bytes = encodeConst(value, v.size, `${this.name}: constant '${name}'`);
    new Uint8Array(ffi().wrap(image, imageSize)).set(bytes, v.offset);
  }

  /**
   * Make map `mapName` use an existing map (another object's, by fd) instead of creating its
   * own, before load: how probe objects share the ring buffer and the span-context maps without
   * pinning them in bpffs. Type, key/value sizes and max_entries must match (the kernel checks).
   */
  reuseMap(mapName: string, fd: number): void {
    this.assertNotLoaded(`reuseMap(${mapName})`);
    checkInt(libbpf().sym.bpf_map__reuse_fd(this.map(mapName).ptr, fd), `map ${mapName}: reuse fd ${fd}`);
  }

  /** Number of entries in a hash map (walks its keys; for end-of-session accounting, not hot paths). */
  countEntries(mapName: string, keySize = 8, limit = 1 << 20): number {
    this.assertLoaded(`countEntries(${mapName})`);
    const fd = this.map(mapName).fd;
    const keys = [new Uint8Array(keySize), new Uint8Array(keySize)];
    let n = 0;
    let prev: Uint8Array | undefined;
    while (n < limit) {
      const next = keys[n % 2]!;
      // bpf_map_get_next_key(fd, NULL, next) gives the first key; it returns <0 (ENOENT) after the last.
      if (libbpf().sym.bpf_map_get_next_key(fd, prev ? addr(prev) : null, addr(next)) < 0) break;
      prev = next;
      n++;
    }
    return n;
  }

  /**
   * Slots of a slot table (bpf/include/slots.bpf.h: an array of {claims, owner, ...}) that have
   * an owner: calls still in flight in it (end-of-session accounting, not hot paths).
   */
  countOwnedSlots(mapName: string): number {
    this.assertLoaded(`countOwnedSlots(${mapName})`);
    const m = this.map(mapName);
    const fd = m.fd;
    const key = new Uint8Array(4);
    const value = new Uint8Array(m.valueSize);
    const k = new DataView(key.buffer);
    const v = new DataView(value.buffer);
    let owned = 0;
    for (let i = 0; i < m.maxEntries; i++) {
      k.setUint32(0, i, true);
      if (libbpf().sym.bpf_map_lookup_elem(fd, addr(key), addr(value)) < 0) break;
      if (v.getBigUint64(SLOT_OWNER_OFFSET, true) !== 0n) owned++;
    }
    return owned;
  }

  /** Resize a map before load (ring buffer: a power of two, a multiple of the page size). */
  setMapMaxEntries(mapName: string, entries: number): void {
    this.assertNotLoaded(`setMapMaxEntries(${mapName})`);
    const m = this.map(mapName);
    if (!Number.isInteger(entries) || entries < 1 || entries > 0xffffffff) {
      throw new TracerError("usage", `map ${mapName}: size ${entries} is not a positive 32-bit integer`);
    }
    if (m.type === BPF_MAP_TYPE_RINGBUF) {
      const page = systemPageSize();
      if ((entries & (entries - 1)) !== 0 || entries < page) {
        throw new TracerError("usage", `ring buffer size ${entries} is not a power of two of at least ${page} bytes`, {
          hint: "use a size such as 4194304 (4 MiB) or 16777216 (16 MiB)",
        });
      }
    }
    checkInt(libbpf().sym.bpf_map__set_max_entries(m.ptr, entries), `map ${mapName}: set max entries ${entries}`);
  }

  /**
   * Create the maps and load every (autoloaded) program into the kernel. A program the verifier
   * rejects gives `verifier_rejected` with the verifier log as `detail`.
   */
  load(): void {
    this.assertNotLoaded("load()");
    this.#logBuf[0] = 0;
    const mark = libbpfMark();
    const r = withSignalsBlocked(() => libbpf().sym.bpf_object__load(this.#ptr));
    if (r >= 0) return this.#markLoaded();
    this.#throwLoadError(r, mark);
  }

  /**
   * load() on a native thread, so this thread can go on with work that needs neither the object
   * nor libbpf while the kernel verifies the programs (tens of ms on a 2-core machine: start-up,
   * bench/RESULTS.md). Until `finish()` returns, nothing may use this object or libbpf (libbpf's
   * messages are suspended meanwhile: its print callback is JS). `finish()` waits for the load:
   * true when loaded; false when it failed, which leaves the object unusable: libbpf's messages
   * about the failure were not seen, so the caller opens the object again and calls load() for
   * them (its errors name the program and carry the verifier log). With -v, or when no thread
   * can be started, `finish()` is load() itself (libbpf's debug messages are wanted as they come).
   */
  startLoad(): { finish(): boolean } {
    this.assertNotLoaded("startLoad()");
    const lib = libbpf();
    const fn = logLevel() === "debug" ? undefined : symbolAddressIn(lib.path, "bpf_object__load");
    const synchronous = {
      finish: (): boolean => {
        this.load();
        return true;
      },
    };
    if (fn === undefined) return synchronous;
    this.#logBuf[0] = 0;
    const restorePrint = suspendLibbpfPrint();
    const thread = startNativeThread(fn, this.#ptr);
    if (thread === undefined) {
      restorePrint();
      return synchronous;
    }
    let result: boolean | undefined;
    const pending = {
      finish: (): boolean => {
        if (result !== undefined) return result;
        try {
          // bpf_object__load returns int: the low 32 bits of the return register.
          result = BigInt.asIntN(32, thread.join()) >= 0n;
        } finally {
          this.#pendingLoad = undefined;
          restorePrint();
        }
        if (result) this.#markLoaded();
        return result;
      },
    };
    this.#pendingLoad = pending;
    return pending;
  }

  #markLoaded(): void {
    this.#loaded = true;
    // Loaded: libbpf reads neither the ELF image (it is done with the ELF once the object is
    // loaded, at the latest) nor the log buffer again; ~1.4 MiB per object not kept.
    this.#keepAlive.length = 0;
    this.#logBuf = EMPTY_LOG;
  }

  #throwLoadError(r: number, mark: number): never {
    const warnings = libbpfWarningsSince(mark);
    const verifierLog = (cstringAt(addr(this.#logBuf)) ?? "").split("\n").filter((l) => l.length > 0);
    if (-r === EAGAIN) {
      // The verifier stops when a signal is pending for this thread (load() blocks them, so
      // something else interrupted it); nothing says the program is wrong.
      throw new TracerError("bpf_error", `load BPF object ${this.name}: the kernel's verifier was interrupted (EAGAIN) and libbpf gave up retrying`, {
        hint: "run beetrace again; if it keeps happening, run it with -v and report the output",
        detail: verifierLog,
      });
    }
    if (verifierLog.length > 0) {
      const prog = warnings.map((w) => /prog '([^']+)'/.exec(w)?.[1]).find((p) => p !== undefined);
      const missing = missingHelper(verifierLog);
      if (missing !== undefined) {
        throw new TracerError(
          "kernel_unsupported",
          `load BPF object ${this.name}: this kernel does not offer the BPF helper ${missing.name} to ${prog ? `program ${prog}` : "its programs"}${missing.since ? ` (it came in Linux ${missing.since})` : ""}`,
          {
            hint: `use a kernel${missing.since ? ` >= ${missing.since}` : " with this helper"} ('beetrace doctor' checks this host)`,
            detail: verifierLog,
          },
        );
      }
      throw new TracerError(
        "verifier_rejected",
        `load BPF object ${this.name}: the kernel verifier rejected ${prog ? `program ${prog}` : "a program"}: ${errnoText(-r)}`,
        {
          hint: "this kernel's verifier does not accept the probe; run with -v for the verifier log and report it",
          detail: verifierLog,
        },
      );
    }
    throw errnoError(`load BPF object ${this.name}`, -r, "bpf_error", warnings);
  }

  /** A program by its C function name. */
  program(name: string): BpfProgram {
    this.assertOpen(`program(${name})`);
    const n = cstr(name);
    const p = libbpf().sym.bpf_object__find_program_by_name(this.#ptr, addr(n));
    if (p === null || p === 0) throw new TracerError("internal", `BPF object ${this.name} has no program '${name}'`);
    return new BpfProgram(this, p, name);
  }

  /** Whether the object declares a map `name` (shared headers give some objects more maps). */
  hasMap(name: string): boolean {
    this.assertOpen(`hasMap(${name})`);
    const n = cstr(name);
    const p = libbpf().sym.bpf_object__find_map_by_name(this.#ptr, addr(n));
    return p !== null && p !== 0;
  }

  /** A map by name (internal maps by their section: ".rodata", ".bss"). */
  map(name: string): BpfMap {
    this.assertOpen(`map(${name})`);
    const n = cstr(name);
    const p = libbpf().sym.bpf_object__find_map_by_name(this.#ptr, addr(n));
    if (p === null || p === 0) throw new TracerError("internal", `BPF object ${this.name} has no map '${name}'`);
    return new BpfMap(this, p, name);
  }

  /**
   * A live view of the loaded object's .bss (BPF-side counters). It maps the kernel's array
   * read-only: read it with DataView getters (plain loads), never Atomics — JSC compiles
   * Atomics.load to a locked read-modify-write that faults on read-only pages (spike §7.1).
   */
  bss(): DataView {
    this.assertLoaded("bss()");
    if (this.#bss !== undefined) return this.#bss.view;
    const m = this.map(".bss");
    const size = m.valueSize;
    const page = systemPageSize();
    const length = Math.ceil(size / page) * page;
    const address = mmapFd(length, PROT_READ, m.fd, 0);
    if (address < 0) throw errnoError(`${this.name}: map .bss for reading`, -address, "bpf_error");
    const view = new DataView(ffi().wrap(address, size));
    this.#bss = { address, length, view, handle: trackHandle(`.bss mapping of ${this.name}`) };
    return view;
  }

  /** Read a .bss integer variable (1, 2, 4 or 8 bytes, unsigned) by name. */
  readBss(name: string): bigint {
    const v = this.sectionVars(".bss").get(name);
    if (v === undefined) throw new TracerError("internal", `BPF object ${this.name} has no .bss variable '${name}'`);
    const view = this.bss();
    switch (v.size) {
      case 1:
        return BigInt(view.getUint8(v.offset));
      case 2:
        return BigInt(view.getUint16(v.offset, true));
      case 4:
        return BigInt(view.getUint32(v.offset, true));
      case 8:
        return view.getBigUint64(v.offset, true);
      default:
        throw new TracerError("internal", `.bss variable '${name}' of ${this.name} is ${v.size} bytes, not an integer`);
    }
  }

  /** @internal Links (and similar) that must be released before the object closes. */
  adopt(child: Disposable): void {
    this.assertOpen("adopt");
    this.#children.push(child);
  }
  /** @internal */
  disown(child: Disposable): void {
    const i = this.#children.lastIndexOf(child);
    if (i >= 0) this.#children.splice(i, 1);
  }

  /** @internal the struct bpf_object * (for link.ts/features.ts). */
  get ptr(): number {
    this.assertOpen("ptr");
    return this.#ptr;
  }

  #internalMap(section: string): number {
    return this.map(section).ptr;
  }

  close(): void {
    this[Symbol.dispose]();
  }

  [Symbol.dispose](): void {
    if (this.#closed) return;
    // Never free the object under the thread still loading it (an error on this thread meanwhile).
    this.#pendingLoad?.finish();
    const errors: unknown[] = [];
    for (let c = this.#children.pop(); c !== undefined; c = this.#children.pop()) {
      try {
        c[Symbol.dispose]();
      } catch (e) {
        errors.push(e);
      }
    }
    if (this.#bss !== undefined) {
      munmap(this.#bss.address, this.#bss.length);
      releaseHandle(this.#bss.handle);
      this.#bss = undefined;
    }
    libbpf().sym.bpf_object__close(this.#ptr);
    this.#closed = true;
    this.#ptr = 0;
    this.#keepAlive.length = 0;
    releaseHandle(this.#handle);
    if (errors.length > 0) throw errors[0];
  }
}

/** Little-endian bytes of `value` in `size` bytes; throws if it does not fit (signed or unsigned). */
export function encodeConst(value: ConstValue, size: number, what: string): Uint8Array {
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
    throw new TracerError("internal", `${what} is ${size} bytes; only 1, 2, 4 and 8-byte integers can be set`);
  }
  let v: bigint;
  if (typeof value === "boolean") v = value ? 1n : 0n;
  else if (typeof value === "bigint") v = value;
  else {
    if (!Number.isSafeInteger(value)) throw new TracerError("internal", `${what}: ${value} is not an integer`);
    v = BigInt(value);
  }
  const bits = BigInt(size * 8);
  if (v < -(1n << (bits - 1n)) || v >= 1n << bits) {
    throw new TracerError("internal", `${what}: ${v} does not fit in ${size} bytes`);
  }
  const u = BigInt.asUintN(size * 8, v);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = Number((u >> BigInt(8 * i)) & 0xffn);
  return out;
}

function readDatasec(sym: LibbpfSymbols, obj: number, section: string, objName: string): Map<string, SectionVar> {
  const vars = new Map<string, SectionVar>();
  const btf = sym.bpf_object__btf(obj);
  if (btf === null || btf === 0) {
    throw new TracerError("bpf_error", `BPF object ${objName} has no BTF`, { hint: "compile BPF objects with clang -g" });
  }
  const secName = cstr(section);
  const id = sym.btf__find_by_name_kind(btf, addr(secName), BTF_KIND_DATASEC);
  if (id < 0) return vars; // no such section: the object simply has no variables there
  const w = ffi();
  const t = checkPtr(sym.btf__type_by_id(btf, id), `${objName}: BTF type ${id}`);
  const head = new DataView(w.wrap(t, BTF_TYPE_SIZE));
  const vlen = head.getUint32(4, true) & 0xffff;
  const secinfo = new DataView(w.wrap(t + BTF_TYPE_SIZE, vlen * BTF_VAR_SECINFO_SIZE));
  for (let i = 0; i < vlen; i++) {
    const base = i * BTF_VAR_SECINFO_SIZE;
    const varType = checkPtr(sym.btf__type_by_id(btf, secinfo.getUint32(base, true)), `${objName}: BTF var type`);
    const nameOff = new DataView(w.wrap(varType, BTF_TYPE_SIZE)).getUint32(0, true);
    const name = cstringAt(sym.btf__name_by_offset(btf, nameOff));
    if (name === undefined || name.length === 0) continue;
    vars.set(name, { name, offset: secinfo.getUint32(base + 4, true), size: secinfo.getUint32(base + 8, true) });
  }
  return vars;
}
