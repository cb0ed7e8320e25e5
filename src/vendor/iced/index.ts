/**
 * @module vendor/iced — the iced-x86 x86 decoder, loaded lazily and once, the same way from
 * source (`bun run`, `bun test`) and inside a `bun build --compile` executable.
 *
 * The package as shipped breaks inside the single executable (bundler mangles its CommonJS glue;
 * the .wasm path is the build machine's). So:
 * - the glue comes from iced_x86.gen.js, generated from node_modules by scripts/vendor-iced.ts
 *   (gitignored; scripts/setup.sh creates it — see that script for why it is not committed);
 * - the .wasm is imported `with { type: "file" }`, which Bun embeds into the executable and
 *   resolves to "/$bunfs/..." there, or to the node_modules file when run from source.
 *
 * Cost (measured on a shared 2-core KVM guest, quiet): compiling the 784 KB wasm ~8 ms, parsing
 * the 0.9 MB glue ~5 ms, running its top level ~14 ms before enum objects were made lazy (see
 * scripts/vendor-iced.ts) and ~2 ms after, instantiating ~1 ms; everything 2-4x slower under load.
 * So nothing happens at import: commands that never need return sites pay nothing. Callers that
 * know they will (inspect, attach) call prepareIced() first: the compile then runs on a
 * background thread (WebAssembly.compile) while they read and parse the target, and the glue
 * runs as soon as the main thread waits for something. iced() stays synchronous and works
 * without prepareIced() (it compiles in place), or while a prepare is still in flight.
 *
 * Runtime note: `with { type: "file" }` and the synchronous `require` of the glue are Bun features
 * (wasm-file.bun.ts). Under Deno the wasm is resolved in node_modules and the glue is loaded by a
 * dynamic import in prepareIced(), so there iced() needs a finished prepareIced() first (openTarget,
 * used by `inspect` and `attach`, always does that).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { TracerError } from "../../errors.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
let wasmPathCache: string | undefined;
/** The .wasm file: embedded by Bun (wasm-file.bun.ts), else resolved in node_modules. */
function wasmPathOf(): string {
  wasmPathCache ??= isBun
    ? (require("./wasm-file.bun.ts") as { default: string }).default
    : createRequire(import.meta.url).resolve("iced-x86/iced_x86_bg.wasm");
  return wasmPathCache;
}
let glueCache: Glue | undefined;

export type Iced = typeof import("iced-x86") & import("./iced_x86.gen.js").IcedNames;
type Glue = typeof import("./iced_x86.gen.js");

interface Loaded {
  iced: Iced;
  /** Main-thread time of that load: running the glue and instantiating, plus parsing the glue and compiling when not prepared. */
  millis: number;
  /** True when the wasm had been compiled ahead (prepareIced) on a background thread. */
  compiledAhead: boolean;
}

let loaded: Loaded | undefined;
let preparing: Promise<void> | undefined;
/** True once the prepareIced() promise has finished (releaseIced must not race it). */
let prepareSettled = false;
/** Set by prepareIced once WebAssembly.compile has finished. */
let compiled: WebAssembly.Module | undefined;

/** The iced-x86 exports; instantiates the WASM module on the first call. */
export function iced(): Iced {
  return (loaded ??= load(compiled)).iced;
}

/**
 * Start loading the decoder, blocking the caller only to parse the glue (~5 ms): the wasm is
 * compiled off the main thread meanwhile, and the module is instantiated and warmed up when
 * the event loop is next free (typically while the caller awaits its file read).
 * Idempotent. Resolves once iced() returns without further work; never rejects — if anything
 * fails, iced() retries synchronously and throws its TracerError (so the error surfaces where
 * the decoder is used, with the same message as without preparing).
 */
export function prepareIced(): Promise<void> {
  if (loaded) return Promise.resolve();
  preparing ??= (async () => {
    try {
      const compiling = WebAssembly.compile(readWasm());
      // Parse the glue now (on this thread, before returning) while the wasm compiles on another.
      if (isBun) requireGlue();
      else glueCache ??= (await import("./iced_x86.gen.js")) as Glue;
      compiled = await compiling;
      loaded ??= load(compiled);
      warmUp(loaded.iced);
    } catch {
      // Deliberately dropped: iced() redoes the failed step synchronously and reports it.
    } finally {
      prepareSettled = true;
    }
  })();
  return preparing;
}

/**
 * The lowercase name of iced Mnemonic value `m` ("jbe"). Reading x.Mnemonic builds the whole
 * ~1,900-member enum object (5-9 ms of start-up on the 2-core test machine); the names list the
 * vendored glue adds (scripts/vendor-iced.ts, revision 3) is one string split on first use.
 */
export function mnemonicName(x: Iced, m: number): string {
  const n = x.MnemonicNames ? x.MnemonicNames[m] : x.Mnemonic[m];
  return n === undefined ? "?" : n.toLowerCase();
}

let keys: { ret: number; nop: number; push: number } | undefined;
/** The Mnemonic values the probe planners compare decoded instructions with (see mnemonicName). */
export function keyMnemonics(x: Iced): { ret: number; nop: number; push: number } {
  if (keys) return keys;
  const names = x.MnemonicNames;
  const value = (name: "Ret" | "Nop" | "Push"): number => {
    const v = names ? names.indexOf(name) : x.Mnemonic[name];
    if (v < 0) throw new TracerError("internal", `iced-x86 has no mnemonic ${name}`, { hint: "the vendored decoder glue is stale: run scripts/setup.sh" });
    return v;
  };
  keys = { ret: value("Ret"), nop: value("Nop"), push: value("Push") };
  return keys;
}

/**
 * Decode one instruction, reading the enums a decode loop reads. The first decode in a process
 * pays for iced's lazily built decoder tables (inside the wasm) and for building those enum
 * objects: 4-20 ms measured, which otherwise lands on the first real decode. Done here it runs
 * while the caller waits for its file read.
 */
function warmUp(x: Iced): void {
  const decoder = new x.Decoder(64, new Uint8Array([0xc3]), x.DecoderOptions.None); // RET (Intel SDM vol. 2B)
  const ins = new x.Instruction();
  try {
    decoder.decodeOut(ins);
    void (ins.flowControl === x.FlowControl.Return && ins.mnemonic === keyMnemonics(x).ret && decoder.lastError === x.DecoderError.None);
  } finally {
    decoder.free();
    ins.free();
  }
}

/**
 * Drop the decoder: its WebAssembly instance (a linear memory of ~2 MiB that never shrinks while
 * referenced, plus ~700 exported functions) and the compiled module become garbage. A trace
 * session calls this once its probes are placed (src/trace/footprint.ts): decoding happens only
 * while planning, and a long-running tracer should not keep it. The next iced() (e.g. `attach
 * --exe` planning a restarted service) loads it again, synchronously, the same way.
 * Not while a prepareIced() is in flight: its result is kept (dropping it then would race).
 */
export function releaseIced(): void {
  if (preparing !== undefined && !prepareSettled) return;
  loaded = undefined;
  compiled = undefined;
  preparing = undefined;
  prepareSettled = false;
}

/** Where the wasm was read from, and how long the first load took on the main thread (for `inspect`/benchmarks). */
export function icedLoadInfo(): { wasmPath: string; loaded: boolean; millis: number | undefined; compiledAhead: boolean } {
  return { wasmPath: wasmPathOf(), loaded: loaded !== undefined, millis: loaded?.millis, compiledAhead: loaded?.compiledAhead ?? false };
}

function readWasm(): Uint8Array {
  let path = "iced_x86_bg.wasm";
  try {
    path = wasmPathOf();
    return readFileSync(path);
  } catch (e) {
    throw new TracerError("internal", `the x86 decoder's WebAssembly file could not be read (${path})`, {
      hint: "reinstall npm packages (npm ci) and rebuild",
      cause: e,
    });
  }
}

function requireGlue(): Glue {
  if (glueCache) return glueCache;
  if (!isBun) {
    throw new TracerError("internal", "the x86 decoder was used before prepareIced() finished", {
      hint: "outside Bun the decoder loads asynchronously: await prepareIced() (or openTarget) first",
    });
  }
  try {
    // A literal require (not a static import) so the 0.9 MB glue is parsed only when needed;
    // Bun's bundler still embeds it in the executable because the specifier is a literal.
    glueCache = require("./iced_x86.gen.js") as Glue;
    return glueCache;
  } catch (e) {
    throw new TracerError("internal", "the x86 decoder (iced-x86 glue) is missing from this build", {
      hint: "run scripts/setup.sh (it generates src/vendor/iced/iced_x86.gen.js), then rebuild",
      cause: e,
    });
  }
}

function load(module: WebAssembly.Module | undefined): Loaded {
  const t0 = performance.now();
  const glue = requireGlue();
  // Glue from before revision 2 of scripts/vendor-iced.ts only takes bytes.
  const ahead = module !== undefined && (glue.GENERATOR_REVISION ?? 1) >= 2;
  const iced = glue.instantiateIced(ahead ? module : readWasm());
  return { iced, millis: performance.now() - t0, compiledAhead: ahead };
}
