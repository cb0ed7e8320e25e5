/**
 * @module bpf/ringbuf — reads a BPF ring buffer by parsing its mapped memory in JS.
 *
 * Parsing the mapping directly is ~10x cheaper per record than a libbpf callback per record and
 * lets us bound each batch so the event loop never starves (research: bun-libbpf-spike §4, §7.4).
 * Layout (kernel/bpf/ringbuf.c): page 0 holds consumer_pos (mapped read-write); page 1 holds
 * producer_pos, followed by the data area, which the kernel lets us map twice in a row so that a
 * record wrapping around the end is contiguous (libbpf does). We map it once: every mapped page
 * counts in the tracer's RSS, and the second copy was 4 MiB of it with the default ring
 * (bench/RESULTS.md, memory). The rare record that wraps (one per trip around the ring) is
 * copied into a scratch buffer instead. Each record has an 8-byte header
 * { u32 len (bit 31 BUSY, bit 30 DISCARD), u32 pg_off } and is padded to 8 bytes; headers are
 * 8-byte aligned and the data area a multiple of pages, so a header never wraps.
 * BPF programs should submit with BPF_RB_NO_WAKEUP and the reader drain on a timer: a wake-up per
 * record slows the traced process 3-5x (spike §4B-C).
 */
import { TracerError } from "../errors.ts";
import { ffi } from "./ffi.ts";
import { errnoError } from "./call.ts";
import { releaseHandle, trackHandle } from "./handles.ts";
import { mmapFd, munmap, PROT_READ, PROT_WRITE, systemPageSize } from "./libc.ts";
import { BPF_MAP_TYPE_RINGBUF, type BpfMap } from "./object.ts";

/** include/uapi/linux/bpf.h: BPF_RINGBUF_BUSY_BIT = 31, BPF_RINGBUF_DISCARD_BIT = 30, BPF_RINGBUF_HDR_SZ = 8. */
const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const LEN_MASK = 0x3fffffff;
const HDR = 8;

/**
 * Called once per committed record. `view` covers the whole mapping; the record's bytes are
 * `view[offset, offset+length)`. The view is only valid during the callback (the kernel reuses
 * the space once the batch is consumed): copy out what you keep.
 */
export type RecordHandler = (view: DataView, offset: number, length: number) => void;

export class RingBufferReader implements Disposable {
  readonly size: number;
  readonly name: string;
  #consumer: { address: number; length: number };
  #producer: { address: number; length: number };
  readonly #consPos: BigUint64Array; // RW page: Atomics.store is safe here
  readonly #prodPos: BigUint64Array; // RO page: plain loads only
  readonly #words: Uint32Array; // producer mapping as u32 (headers)
  readonly #view: DataView; // producer mapping for the handler
  readonly #dataStart: number; // byte offset of the data area inside the producer mapping
  readonly #wrap = new WrapScratch();
  readonly #handle: number;
  readonly #owner: BpfMap["object"];
  #closed = false;

  /** Map a loaded BPF_MAP_TYPE_RINGBUF map for reading. */
  constructor(map: BpfMap) {
    map.object.assertLoaded(`ring buffer ${map.name}`);
    if (map.type !== BPF_MAP_TYPE_RINGBUF) {
      throw new TracerError("internal", `map ${map.name} is not a ring buffer (type ${map.type})`);
    }
    const fd = map.fd;
    const page = systemPageSize();
    this.name = map.name;
    this.size = map.maxEntries;
    const cons = mmapFd(page, PROT_READ | PROT_WRITE, fd, 0);
    if (cons < 0) throw errnoError(`ring buffer ${map.name}: map consumer page`, -cons);
    const prodLen = page + this.size;
    const prod = mmapFd(prodLen, PROT_READ, fd, page);
    if (prod < 0) {
      munmap(cons, page);
      throw errnoError(`ring buffer ${map.name}: map data pages`, -prod);
    }
    this.#consumer = { address: cons, length: page };
    this.#producer = { address: prod, length: prodLen };
    const w = ffi();
    this.#consPos = new BigUint64Array(w.wrap(cons, 8));
    const prodBuf = w.wrap(prod, prodLen);
    this.#prodPos = new BigUint64Array(prodBuf, 0, 1);
    this.#words = new Uint32Array(prodBuf);
    this.#view = new DataView(prodBuf);
    this.#dataStart = page;
    this.#handle = trackHandle(`ring buffer mapping ${map.name} (${this.size} bytes)`);
    this.#owner = map.object;
    map.object.adopt(this); // unmapped before its object closes, if the caller forgets
  }

  /** Bytes written by the producer and not yet consumed (including headers and discarded records). */
  pendingBytes(): number {
    this.#assertOpen();
    return Number(this.#prodPos[0]! - this.#consPos[0]!);
  }

  /**
   * Hand each committed record to `onRecord`, oldest first, and release the space once per
   * batch. Stops at the first record still being written (BUSY), when the ring is empty, or once
   * `maxBytes` of ring space have been consumed (default: one ring's worth). Discarded records are
   * skipped. Returns the number of records handed out. If `onRecord` throws, the records before
   * it and the one that threw count as consumed, and the error propagates.
   */
  drain(onRecord: RecordHandler, maxBytes: number = this.size): number {
    this.#assertOpen();
    const start = Number(this.#consPos[0]!);
    // One plain load of producer_pos per batch; records up to it are reserved (maybe BUSY).
    const prod = Number(this.#prodPos[0]!);
    const cursor = { pos: start, records: 0 };
    try {
      parseRecords(this.#words, this.#view, this.#dataStart, this.size, cursor, Math.min(prod, start + maxBytes), onRecord, this.#wrap);
    } finally {
      // Release the space in one store (the kernel reads consumer_pos with smp_load_acquire).
      if (cursor.pos !== start) Atomics.store(this.#consPos, 0, BigInt(cursor.pos));
    }
    return cursor.records;
  }

  /**
   * Drain every `intervalMs` on the event loop, at most `maxBytesPerTick` per tick. Errors from
   * the handler stop the timer and go to `onError`. Dispose the result to stop.
   */
  startDrainTimer(
    intervalMs: number,
    onRecord: RecordHandler,
    opts: { maxBytesPerTick?: number; onError?: (e: unknown) => void } = {},
  ): Disposable & { readonly records: number } {
    this.#assertOpen();
    let records = 0;
    const timer = setInterval(() => {
      if (this.#closed) return clearInterval(timer);
      try {
        records += this.drain(onRecord, opts.maxBytesPerTick ?? this.size);
      } catch (e) {
        clearInterval(timer);
        opts.onError?.(e);
      }
    }, intervalMs);
    return {
      get records() {
        return records;
      },
      [Symbol.dispose]: () => clearInterval(timer),
    };
  }

  #assertOpen(): void {
    if (this.#closed) throw new TracerError("internal", `ring buffer ${this.name} used after dispose`);
  }

  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#owner.disown(this);
    munmap(this.#producer.address, this.#producer.length);
    munmap(this.#consumer.address, this.#consumer.length);
    releaseHandle(this.#handle);
  }
}

/** Where a record that wraps around the end of a once-mapped data area is put together. */
export class WrapScratch {
  #bytes = new Uint8Array(0);
  #view = new DataView(this.#bytes.buffer);

  /** The record's `len` bytes from `at` in `src`, continuing at `dataStart` past `dataEnd`, in one view (from offset 0). */
  join(src: DataView, at: number, len: number, dataStart: number, dataEnd: number): DataView {
    if (this.#bytes.byteLength < len) {
      this.#bytes = new Uint8Array(Math.max(len, 2 * this.#bytes.byteLength, 4096));
      this.#view = new DataView(this.#bytes.buffer);
    }
    const head = dataEnd - at;
    const whole = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    this.#bytes.set(whole.subarray(at, dataEnd), 0);
    this.#bytes.set(whole.subarray(dataStart, dataStart + len - head), head);
    return this.#view;
  }
}

/**
 * The ring's record walk, separate from the mapping so unit tests can run it over hand-built
 * memory. `words`/`view` cover the producer mapping (data area at `dataStart`): mapped twice in a
 * row when `wrap` is undefined, else once, a wrapping record then being handed over from `wrap`
 * (offset 0). Advances `cursor.pos` from its value up to `limit` (a producer position), stopping
 * at a BUSY record. A record whose handler throws still counts as consumed (it is not replayed
 * forever).
 */
export function parseRecords(
  words: Uint32Array,
  view: DataView,
  dataStart: number,
  size: number,
  cursor: { pos: number; records: number },
  limit: number,
  onRecord: RecordHandler,
  wrap?: WrapScratch,
): void {
  const dataEnd = dataStart + size;
  while (cursor.pos < limit) {
    const off = dataStart + (cursor.pos % size);
    const hdr = words[off >>> 2]!;
    if (hdr & BUSY) return; // reserved but not yet submitted; later records must wait for it
    const len = hdr & LEN_MASK;
    cursor.pos += (len + HDR + 7) & ~7;
    if ((hdr & DISCARD) === 0) {
      cursor.records++;
      const at = off + HDR;
      if (wrap !== undefined && at + len > dataEnd) onRecord(wrap.join(view, at, len, dataStart, dataEnd), 0, len);
      else onRecord(view, at, len);
    }
  }
}

/** Ring-buffer header bits, exported for tests that build records by hand. */
export const RINGBUF_HEADER = { BUSY, DISCARD, SIZE: HDR } as const;
