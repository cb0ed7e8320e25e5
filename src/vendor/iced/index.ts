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
 * Cost (measured on a shared 2-core KVM guest): the first call — parse the 0.9 MB glue, read and
 * compile the 784 KB wasm — took 20-30 ms when the machine was quiet and 60-120 ms under load,
 * in `bun run` and in the compiled executable alike. So it happens on first use only: commands
 * that never need return sites (--help, doctor) pay nothing.
 *
 * Runtime note: `with { type: "file" }` and the lazy `require` are Bun features; under Deno this
 * module does not load (the rest of src/binary/ does not depend on it at import time).
 */
import { readFileSync } from "node:fs";
import wasmPath from "iced-x86/iced_x86_bg.wasm" with { type: "file" };
import { TracerError } from "../../errors.ts";

export type Iced = typeof import("iced-x86");

let loaded: { iced: Iced; millis: number } | undefined;

/** The iced-x86 exports; instantiates the WASM module on the first call. */
export function iced(): Iced {
  return (loaded ??= load()).iced;
}

/** Where the wasm was read from and how long the first load took (for `inspect`/benchmarks). */
export function icedLoadInfo(): { wasmPath: string; loaded: boolean; millis: number | undefined } {
  return { wasmPath, loaded: loaded !== undefined, millis: loaded?.millis };
}

function load(): { iced: Iced; millis: number } {
  const t0 = performance.now();
  let glue: typeof import("./iced_x86.gen.js");
  try {
    // A literal require (not a static import) so the 0.9 MB glue is parsed only when needed;
    // Bun's bundler still embeds it in the executable because the specifier is a literal.
    glue = require("./iced_x86.gen.js") as typeof import("./iced_x86.gen.js");
  } catch (e) {
    throw new TracerError("internal", "the x86 decoder (iced-x86 glue) is missing from this build", {
      hint: "run scripts/setup.sh (it generates src/vendor/iced/iced_x86.gen.js), then rebuild",
      cause: e,
    });
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(wasmPath);
  } catch (e) {
    throw new TracerError("internal", `the x86 decoder's WebAssembly file could not be read (${wasmPath})`, {
      hint: "reinstall npm packages (npm ci) and rebuild",
      cause: e,
    });
  }
  const iced = glue.instantiateIced(bytes);
  return { iced, millis: performance.now() - t0 };
}
