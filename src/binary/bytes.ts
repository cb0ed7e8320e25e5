/**
 * @module binary/bytes — bounds-checked little/big-endian reads over untrusted bytes.
 *
 * Every reader of ELF, pclntab, buildinfo and DWARF goes through ByteReader so that a
 * corrupt or truncated file produces a `corrupt_binary` TracerError, never a RangeError,
 * a wrong value read past the end, or a crash.
 */
import { TracerError } from "../errors.ts";

export class ByteReader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    /** What these bytes are, for error messages: ".gopclntab", "ELF header". */
    readonly what: string,
    readonly littleEndian = true,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.byteLength;
  }

  /** Throws corrupt_binary unless [off, off+len) lies inside the bytes. */
  check(off: number, len: number): void {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.bytes.byteLength) {
      throw new TracerError(
        "corrupt_binary",
        `${this.what} is truncated or corrupt: read of ${len} bytes at offset 0x${safeHex(off)} is outside its ${this.bytes.byteLength} bytes`,
        { hint: "the file may be truncated or damaged; compare it with the original build" },
      );
    }
  }

  u8(off: number): number {
    this.check(off, 1);
    return this.view.getUint8(off);
  }
  u16(off: number): number {
    this.check(off, 2);
    return this.view.getUint16(off, this.littleEndian);
  }
  u32(off: number): number {
    this.check(off, 4);
    return this.view.getUint32(off, this.littleEndian);
  }
  i32(off: number): number {
    this.check(off, 4);
    return this.view.getInt32(off, this.littleEndian);
  }
  u64big(off: number): bigint {
    this.check(off, 8);
    return this.view.getBigUint64(off, this.littleEndian);
  }
  /** A u64 that must fit in a JS number (addresses, sizes); larger is corruption. */
  u64(off: number): number {
    const v = this.u64big(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new TracerError("corrupt_binary", `${this.what} is corrupt: value 0x${v.toString(16)} at offset 0x${off.toString(16)} is too large`, {
        hint: "the file may be damaged; compare it with the original build",
      });
    }
    return Number(v);
  }
  /** Pointer-sized unsigned read (4 or 8 bytes). */
  uptr(off: number, ptrSize: number): number {
    return ptrSize === 8 ? this.u64(off) : this.u32(off);
  }
  /** A view of [off, off+len) — no copy. */
  slice(off: number, len: number): Uint8Array {
    this.check(off, len);
    return this.bytes.subarray(off, off + len);
  }
  /** Sub-reader over [off, off+len) with its own name for messages. */
  sub(off: number, len: number, what: string): ByteReader {
    return new ByteReader(this.slice(off, len), what, this.littleEndian);
  }
  /** NUL-terminated string starting at off (reads at most `max` bytes). */
  cstring(off: number, max = 1 << 16): string {
    this.check(off, 0);
    const end = Math.min(this.bytes.byteLength, off + max);
    let i = off;
    while (i < end && this.bytes[i] !== 0) i++;
    if (i === end && (end === this.bytes.byteLength || this.bytes[i] !== 0)) {
      throw new TracerError("corrupt_binary", `${this.what} is corrupt: unterminated string at offset 0x${off.toString(16)}`, {
        hint: "the file may be damaged; compare it with the original build",
      });
    }
    return decodeUtf8(this.bytes.subarray(off, i));
  }
  /** Unsigned LEB128 (DWARF, Go buildinfo varints). Returns [value, bytesRead]. */
  uleb128(off: number): [number, number] {
    let result = 0;
    let shift = 0;
    let i = 0;
    for (;;) {
      const b = this.u8(off + i);
      i++;
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      else if ((b & 0x7f) !== 0) {
        throw new TracerError("corrupt_binary", `${this.what} is corrupt: varint at offset 0x${off.toString(16)} overflows`, {
          hint: "the file may be damaged; compare it with the original build",
        });
      }
      shift += 7;
      if ((b & 0x80) === 0) return [result, i];
      if (i > 10) {
        throw new TracerError("corrupt_binary", `${this.what} is corrupt: varint at offset 0x${off.toString(16)} is too long`, {
          hint: "the file may be damaged; compare it with the original build",
        });
      }
    }
  }
  /** Signed LEB128. Returns [value, bytesRead]. */
  sleb128(off: number): [number, number] {
    let result = 0;
    let shift = 0;
    let i = 0;
    let b: number;
    do {
      b = this.u8(off + i);
      i++;
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (i > 10) {
        throw new TracerError("corrupt_binary", `${this.what} is corrupt: varint at offset 0x${off.toString(16)} is too long`, {
          hint: "the file may be damaged; compare it with the original build",
        });
      }
    } while (b & 0x80);
    if (b & 0x40 && shift < 53) result -= 2 ** shift;
    return [result, i];
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
export function decodeUtf8(b: Uint8Array): string {
  return utf8.decode(b);
}

function safeHex(n: number): string {
  return Number.isFinite(n) ? Math.trunc(n).toString(16) : String(n);
}

/** "0x…" form used in --json output and messages. */
export function hex(n: number | bigint): string {
  return "0x" + n.toString(16);
}

/** Throw corrupt_binary with a consistent message/hint. */
export function corrupt(what: string, problem: string): never {
  throw new TracerError("corrupt_binary", `${what} is corrupt: ${problem}`, {
    hint: "the file may be truncated or damaged; compare it with the original build",
  });
}
