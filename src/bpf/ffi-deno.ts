/**
 * @module bpf/ffi-deno — the Deno.dlopen implementation of the FfiBackend (see ffi.ts).
 *
 * Deno hands out opaque pointer objects and returns 64-bit integers as number|bigint; this
 * backend converts at the boundary so callers see the same numbers as with Bun. Needs
 * `deno run --allow-ffi --allow-read`. The Deno API is typed here by hand (only what we use)
 * so the project type-checks against Bun's types alone.
 */
import type { FfiBackend, FfiType, FnDef, FnDefs, NativeLibrary } from "./ffi.ts";

type DenoNative = "void" | "i32" | "u32" | "i64" | "u64" | "isize" | "usize" | "pointer";
type PointerObject = object;
interface DenoFfi {
  dlopen(path: string, defs: Record<string, { parameters: DenoNative[]; result: DenoNative }>): {
    symbols: Record<string, (...a: unknown[]) => unknown>;
    close(): void;
  };
  UnsafePointer: {
    create(value: bigint): PointerObject | null;
    value(p: PointerObject | null): bigint | number;
    of(buf: ArrayBufferView): PointerObject | null;
  };
  UnsafePointerView: {
    getArrayBuffer(p: PointerObject, length: number, offset?: number): ArrayBuffer;
    getCString(p: PointerObject, offset?: number): string;
  };
  UnsafeCallback: new (
    def: { parameters: DenoNative[]; result: DenoNative },
    fn: (...a: unknown[]) => unknown,
  ) => { pointer: PointerObject; close(): void };
}

const NATIVE: Record<FfiType, DenoNative> = {
  void: "void",
  i32: "i32",
  u32: "u32",
  i64: "i64",
  u64: "u64",
  isize: "isize",
  usize: "usize",
  ptr: "pointer",
};

export function denoBackend(): FfiBackend {
  const D = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const toPtr = (v: unknown): PointerObject | null => (v === null || v === 0 ? null : D.UnsafePointer.create(BigInt(v as number)));
  const fromPtr = (p: unknown): number | null => (p === null ? null : Number(D.UnsafePointer.value(p as PointerObject)));
  /** JS value we hand to Deno for a declared argument type. */
  const arg = (t: FfiType, v: unknown): unknown => (t === "ptr" ? toPtr(v) : t === "i64" || t === "u64" ? BigInt(v as number) : v);
  /** JS value we hand back to our callers for a declared result type. */
  const ret = (t: FfiType, v: unknown): unknown => {
    if (t === "ptr") return fromPtr(v);
    if (t === "i64" || t === "u64") return BigInt(v as number);
    if (t === "isize" || t === "usize") return Number(v);
    return v;
  };
  return {
    runtime: "deno",
    open<L extends FnDefs>(path: string, defs: L): NativeLibrary<L> {
      const native: Record<string, { parameters: DenoNative[]; result: DenoNative }> = {};
      for (const [n, d] of Object.entries(defs)) native[n] = { parameters: d.args.map((t) => NATIVE[t]), result: NATIVE[d.returns] };
      const lib = D.dlopen(path, native);
      const symbols: Record<string, (...a: unknown[]) => unknown> = {};
      for (const [n, d] of Object.entries(defs)) {
        const f = lib.symbols[n];
        if (f === undefined) throw new Error(`symbol ${n} missing from ${path}`);
        symbols[n] = (...a: unknown[]) => ret(d.returns, f(...a.map((v, i) => arg(d.args[i] ?? "void", v))));
      }
      return { path, symbols: symbols as unknown as NativeLibrary<L>["symbols"], close: () => lib.close() };
    },
    addressOf(view: ArrayBufferView): number {
      return fromPtr(D.UnsafePointer.of(view)) ?? 0;
    },
    wrap(address: number, length: number): ArrayBuffer {
      const p = toPtr(address);
      if (p === null) throw new Error("wrap of NULL");
      return D.UnsafePointerView.getArrayBuffer(p, length);
    },
    readCString(address: number): string {
      const p = toPtr(address);
      if (p === null) throw new Error("readCString of NULL");
      return D.UnsafePointerView.getCString(p);
    },
    callback<C extends FnDef>(def: C, fn: (...args: never[]) => unknown) {
      const cb = new D.UnsafeCallback({ parameters: def.args.map((t) => NATIVE[t]), result: NATIVE[def.returns] }, (...a: unknown[]) =>
        (fn as (...x: unknown[]) => unknown)(...a.map((v, i) => ret(def.args[i] ?? "void", v))),
      );
      return { address: fromPtr(cb.pointer) ?? 0, close: () => cb.close() };
    },
  };
}
