/**
 * @module tests/smoke/iced-compiled-entry — entry point compiled by iced-compiled.test.ts with
 * `bun build --compile`: finds the return sites of the functions named on the command line
 * (`<binary> <hexaddr>:<size>...`) and prints them as JSON, with where the wasm came from.
 */
import { readFileSync } from "node:fs";
import { findReturnSites } from "../../src/binary/returns.ts";
import { icedLoadInfo } from "../../src/vendor/iced/index.ts";

const [binPath, textVma, textOff, ...funcs] = process.argv.slice(2);
if (binPath === undefined || textVma === undefined || textOff === undefined) {
  console.error("usage: iced-compiled-entry <binary> <text-vma-hex> <text-fileoff-hex> <hexaddr>:<size>...");
  process.exit(2);
}
const bytes = readFileSync(binPath);
const loadedBefore = icedLoadInfo().loaded;
const sites = funcs.map((spec) => {
  const [addrHex, sizeDec] = spec.split(":");
  const addr = parseInt(addrHex ?? "", 16);
  const off = addr - parseInt(textVma, 16) + parseInt(textOff, 16);
  return findReturnSites("x86_64", bytes.subarray(off, off + Number(sizeDec)), addr);
});
const info = icedLoadInfo();
console.log(JSON.stringify({ loadedBefore, loadedAfter: info.loaded, wasmPath: info.wasmPath, loadMs: info.millis, sites }));
