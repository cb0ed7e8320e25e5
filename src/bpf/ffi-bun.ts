/**
 * @module bpf/ffi-bun — the bun:ffi implementation of the FfiBackend (see ffi.ts).
 *
 * Only this file and ffi-deno.ts name a runtime's FFI. Bun already represents pointers as
 * numbers (null for NULL), so symbols are bound without wrappers: a libbpf call costs one
 * native transition and nothing else.
 */
import { CString, FFIType, JSCallback, dlopen, ptr, toArrayBuffer } from "bun:ffi";
import type { FfiBackend, FfiType, FnDef, FnDefs, NativeLibrary } from "./ffi.ts";

// isize/usize values we pass (lengths, offsets) fit in a double; the *_fast types return a
// Number when they fit instead of always allocating a BigInt.
const TYPES: Record<FfiType, FFIType> = {
  void: FFIType.void,
  i32: FFIType.i32,
  u32: FFIType.u32,
  i64: FFIType.i64,
  u64: FFIType.u64,
  isize: FFIType.i64_fast,
  usize: FFIType.u64_fast,
  ptr: FFIType.ptr,
};

function bunDefs(defs: FnDefs): Record<string, { args: FFIType[]; returns: FFIType }> {
  const out: Record<string, { args: FFIType[]; returns: FFIType }> = {};
  for (const [name, d] of Object.entries(defs)) out[name] = { args: d.args.map((t) => TYPES[t]), returns: TYPES[d.returns] };
  return out;
}

export const bunBackend: FfiBackend = {
  runtime: "bun",
  open<D extends FnDefs>(path: string, defs: D): NativeLibrary<D> {
    const lib = dlopen(path, bunDefs(defs));
    return { path, symbols: lib.symbols as unknown as NativeLibrary<D>["symbols"], close: () => lib.close() };
  },
  addressOf(view: ArrayBufferView): number {
    return ptr(view as Uint8Array);
  },
  wrap(address: number, length: number): ArrayBuffer {
    return toArrayBuffer(address as never, 0, length);
  },
  readCString(address: number): string {
    return new CString(address as never).toString();
  },
  callback<D extends FnDef>(def: D, fn: (...args: never[]) => unknown) {
    const cb = new JSCallback(fn as (...args: unknown[]) => unknown, { args: def.args.map((t) => TYPES[t]), returns: TYPES[def.returns] });
    const address = cb.ptr;
    if (address === null) throw new Error("JSCallback has no address");
    return { address: address as unknown as number, close: () => cb.close() };
  },
};
