/**
 * @module scripts/vendor-iced — generates src/vendor/iced/iced_x86.gen.js from the installed
 * iced-x86 npm package, so the decoder also works inside `bun build --compile`.
 *
 * Why: the package's wasm-bindgen glue is CommonJS that (1) assigns `module.exports` into the
 * WASM import object, which Bun's bundler turns into a reference to a symbol it never emits
 * ("ReferenceError: exports_iced_x86 is not defined"), and (2) loads the .wasm with
 * `readFileSync(path.join(__dirname, ...))`, which bakes the build machine's path into the
 * executable. We wrap the glue in a function that takes `module` and the wasm bytes as
 * parameters (the bundler leaves locally bound names alone) and drop its two `require` calls.
 * The .wasm itself is embedded by src/vendor/iced/index.ts with `with { type: "file" }`.
 *
 * Choice: the output is NOT committed (it is 0.9 MB of machine-made JS that changes with every
 * iced-x86 bump). It is gitignored and produced by scripts/setup.sh, which runs this script on
 * every setup; the script rewrites the file only when the package's glue changed (it records the
 * glue's SHA-256 in the output). The hand-written type declaration beside it
 * (iced_x86.gen.d.ts) is committed, so `tsc` passes even before setup. A unit test
 * (tests/unit/binary/returns.test.ts) fails when the generated file is stale.
 *
 * Usage: bun scripts/vendor-iced.ts            write if missing or stale
 *        bun scripts/vendor-iced.ts --check    exit 1 if missing or stale, write nothing
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkgDir = join(root, "node_modules", "iced-x86");
export const GENERATED_PATH = join(root, "src", "vendor", "iced", "iced_x86.gen.js");

/**
 * Bumped whenever generate() changes what it writes, so an output made by an older revision of
 * this script counts as stale even when the package's glue has not changed. Revision 2: the
 * caller may pass a compiled WebAssembly.Module instead of bytes; enum objects are built lazily.
 * Revision 3: `MnemonicNames`, the Mnemonic enum's names by value as one string split on first
 * use (naming an instruction without building the ~1,900-member enum: 5-9 ms of start-up).
 */
export const GENERATOR_REVISION = 3;

/** The exact lines of the wasm-bindgen glue we replace; if upstream changes them we stop. */
const UTIL_REQUIRE = "const { TextDecoder, TextEncoder } = require(`util`);\n";
const WASM_LOAD =
  "const path = require('path').join(__dirname, 'iced_x86_bg.wasm');\n" + "const bytes = require('fs').readFileSync(path);\n";
const WASM_COMPILE = "const wasmModule = new WebAssembly.Module(bytes);\n";

/**
 * `module.exports.Name = Object.freeze({ ... });` — the glue's 41 enums (Code alone has ~4,900
 * members, each with a reverse mapping). Building them all took ~12 ms of the ~14 ms the glue's
 * top level ran on a 2-core KVM guest, though beetrace reads four of them. Made lazy getters;
 * only pure data literals are rewritten (checked below), so evaluating one later gives the same
 * frozen object.
 */
const ENUM_RE = /^module\.exports\.(\w+) = Object\.freeze\((\{[\s\S]*?\})\);$/gm;

function lazyEnums(text: string): string {
  let count = 0;
  const out = text.replace(ENUM_RE, (_all, name: string, literal: string) => {
    const code = literal.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
    if (!/^\{[\s\w":,-]*\}$/.test(code)) {
      throw new Error(`vendor-iced: enum ${name} is not a plain data literal; update this script`);
    }
    count++;
    const lazy = `{ let v; Object.defineProperty(module.exports, ${JSON.stringify(name)}, { enumerable: true, get: () => (v ??= Object.freeze(${literal})) }); }`;
    return name === "Mnemonic" ? `${lazy}\n${namesByValue(name, code)}` : lazy;
  });
  if (count === 0) throw new Error("vendor-iced: found no enum objects in iced_x86.js; the glue changed, update this script");
  return out;
}

/** `<name>Names`: the enum's member names indexed by value (dense from 0), split from one string on first read. */
function namesByValue(name: string, code: string): string {
  const names: string[] = [];
  for (const m of code.matchAll(/(?:^|[{,])\s*([A-Za-z_]\w*)\s*:\s*(\d+)/g)) names[Number(m[2])] = m[1]!;
  for (let i = 0; i < names.length; i++) if (names[i] === undefined) throw new Error(`vendor-iced: enum ${name} has no member ${i}; update this script`);
  return `{ let n; Object.defineProperty(module.exports, ${JSON.stringify(`${name}Names`)}, { enumerable: true, get: () => (n ??= Object.freeze(${JSON.stringify(names.join(" "))}.split(" "))) }); }`;
}

export interface GlueSource {
  version: string;
  sha256: string;
  text: string;
}

export function readGlue(): GlueSource {
  const text = readFileSync(join(pkgDir, "iced_x86.js"), "utf8");
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version?: unknown };
  const version = typeof pkg.version === "string" ? pkg.version : "unknown";
  return { version, sha256: createHash("sha256").update(text).digest("hex"), text };
}

function replaceOnce(text: string, find: string, by: string): string {
  const at = text.indexOf(find);
  if (at < 0 || text.indexOf(find, at + 1) >= 0) {
    throw new Error(`vendor-iced: expected exactly one ${JSON.stringify(find.trim())} in iced_x86.js; the glue changed, update this script`);
  }
  return text.slice(0, at) + by + text.slice(at + find.length);
}

export function generate(glue: GlueSource): string {
  // TextDecoder/TextEncoder are globals in Bun, Deno and Node; no `util` needed.
  let body = replaceOnce(glue.text, UTIL_REQUIRE, "");
  body = replaceOnce(body, WASM_LOAD, "const bytes = wasmBytes;\n");
  // A module compiled ahead (WebAssembly.compile, off the main thread) is used as is.
  body = replaceOnce(body, WASM_COMPILE, "const wasmModule = bytes instanceof WebAssembly.Module ? bytes : new WebAssembly.Module(bytes);\n");
  body = lazyEnums(body);
  // Anything else reaching outside the function would defeat the wrapper: refuse to generate.
  const code = body.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const bad of ["require(", "__dirname", "__filename", "import("]) {
    if (code.includes(bad)) throw new Error(`vendor-iced: glue still uses ${bad} after rewriting; update this script`);
  }
  return [
    `// GENERATED by scripts/vendor-iced.ts revision ${GENERATOR_REVISION} from iced-x86 ${glue.version} (iced_x86.js sha256 ${glue.sha256}). DO NOT EDIT.`,
    `// The wasm-bindgen glue (MIT license, project icedland/iced), wrapped in a function so`,
    `// that bundlers leave its CommonJS \`module\` alone; the caller passes the wasm bytes or a compiled module.`,
    `export const ICED_VERSION = ${JSON.stringify(glue.version)};`,
    `export const GLUE_SHA256 = ${JSON.stringify(glue.sha256)};`,
    `export const GENERATOR_REVISION = ${GENERATOR_REVISION};`,
    `export function instantiateIced(wasmBytes) {`,
    `  const module = { exports: {} };`,
    `  (function (module, wasmBytes) {`,
    body,
    `  })(module, wasmBytes);`,
    `  return module.exports;`,
    `}`,
    ``,
  ].join("\n");
}

/**
 * SHA-256 recorded in an existing generated file, or undefined if absent/unreadable or written
 * by another revision of this script (so either change makes it stale).
 */
export function generatedSha256(): string | undefined {
  if (!existsSync(GENERATED_PATH)) return undefined;
  const head = readFileSync(GENERATED_PATH, "utf8").slice(0, 400);
  if (!head.includes(`vendor-iced.ts revision ${GENERATOR_REVISION} `)) return undefined;
  return /iced_x86\.js sha256 ([0-9a-f]{64})\)/.exec(head)?.[1];
}

if (import.meta.main) {
  const glue = readGlue();
  const current = generatedSha256();
  if (current === glue.sha256) {
    console.log(`vendor-iced: ${GENERATED_PATH.slice(root.length + 1)} is up to date (iced-x86 ${glue.version})`);
  } else if (process.argv.includes("--check")) {
    console.error(`vendor-iced: ${GENERATED_PATH.slice(root.length + 1)} is ${!existsSync(GENERATED_PATH) ? "missing" : "stale"}; run: bun scripts/vendor-iced.ts`);
    process.exitCode = 1;
  } else {
    const tmp = `${GENERATED_PATH}.${process.pid}.tmp`;
    writeFileSync(tmp, generate(glue));
    renameSync(tmp, GENERATED_PATH); // atomic, so a concurrent test never imports half a file
    console.log(`vendor-iced: wrote ${GENERATED_PATH.slice(root.length + 1)} (iced-x86 ${glue.version})`);
  }
}
