/**
 * @module bpf/ffi — the runtime adapter: the one small layer that hides bun:ffi vs Deno.dlopen.
 *
 * Everything else in src/bpf/ declares native functions in the neutral vocabulary below and
 * receives pointers as plain JS numbers (x86-64/arm64 user addresses are < 2^48, so a double
 * holds them exactly). NULL comes back as `null` (or 0 from a Deno backend; `isNull` accepts both).
 * The backend is chosen once, at import, by which runtime is running us; a runtime with no FFI
 * gets an error when native code is first used, not at import, so pure modules still load.
 */
import { TracerError } from "../errors.ts";

/** Argument/return types, named after their C meaning, not after one runtime's spelling. */
export type FfiType = "void" | "i32" | "u32" | "i64" | "u64" | "isize" | "usize" | "ptr";

export interface FnDef {
  readonly args: readonly FfiType[];
  readonly returns: FfiType;
}
export type FnDefs = Readonly<Record<string, FnDef>>;

/** A native pointer: an address, or null for NULL. */
export type Ptr = number | null;

type ArgJs<T extends FfiType> = T extends "i64" | "u64" ? bigint | number : T extends "ptr" ? Ptr : number;
type RetJs<T extends FfiType> = T extends "void"
  ? void
  : T extends "i64" | "u64"
    ? bigint
    : T extends "ptr"
      ? Ptr
      : number;
type ArgsJs<A extends readonly FfiType[]> = { -readonly [I in keyof A]: ArgJs<A[I]> };
/** What a callback receives for declared argument types (same shapes as return values). */
export type CallbackArgs<A extends readonly FfiType[]> = { -readonly [I in keyof A]: RetJs<A[I]> };

export type BoundFn<D extends FnDef> = (...args: ArgsJs<D["args"]>) => RetJs<D["returns"]>;
export type Bound<D extends FnDefs> = { readonly [K in keyof D]: BoundFn<D[K]> };

export interface NativeLibrary<D extends FnDefs> {
  readonly path: string;
  readonly symbols: Bound<D>;
  close(): void;
}

/** A C-callable function pointer that runs JS; keep it alive while C may call it. */
export interface NativeCallback {
  readonly address: number;
  close(): void;
}

export interface FfiBackend {
  readonly runtime: "bun" | "deno";
  /** dlopen(path) and bind `defs`; throws (the runtime's own error) when the file or a symbol is missing. */
  open<D extends FnDefs>(path: string, defs: D): NativeLibrary<D>;
  /** Address of a typed array's first byte. The caller keeps the array referenced while C uses it. */
  addressOf(view: ArrayBufferView): number;
  /** An ArrayBuffer over native memory (no copy); valid only while that memory stays mapped. */
  wrap(address: number, length: number): ArrayBuffer;
  /** Copy a NUL-terminated C string out of native memory. */
  readCString(address: number): string;
  /** Wrap a JS function as a C function pointer called synchronously on the JS thread. */
  callback<D extends FnDef>(def: D, fn: (...args: CallbackArgs<D["args"]>) => RetJs<D["returns"]>): NativeCallback;
}

export function isNull(p: Ptr): p is null | 0 {
  return p === null || p === 0;
}

async function loadBackend(): Promise<FfiBackend | TracerError> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  try {
    if (g.Bun !== undefined) return (await import("./ffi-bun.ts")).bunBackend;
    if (g.Deno !== undefined) return (await import("./ffi-deno.ts")).denoBackend();
  } catch (e) {
    return new TracerError("bpf_error", `cannot initialise native calls: ${e instanceof Error ? e.message : String(e)}`, {
      hint: "run beetrace with Bun (or Deno with --allow-ffi --allow-read)",
      cause: e,
    });
  }
  return new TracerError("bpf_error", "this JavaScript runtime has no foreign-function interface beetrace can use", {
    hint: "run beetrace with Bun (or Deno with --allow-ffi --allow-read)",
  });
}

const backend = await loadBackend();

/** The active backend; throws a TracerError when the runtime has none. */
export function ffi(): FfiBackend {
  if (backend instanceof TracerError) throw backend;
  return backend;
}
