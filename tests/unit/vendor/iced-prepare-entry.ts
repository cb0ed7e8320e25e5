/**
 * @module tests/unit/vendor/iced-prepare-entry — run in a fresh process by iced-prepare.test.ts
 * (the decoder is loaded once per process): loads iced-x86 the way `mode` says, finds the RETs
 * in a fixed byte sequence and prints what happened as JSON.
 */
import { findReturnSites } from "../../../src/binary/returns.ts";
import { iced, icedLoadInfo, prepareIced } from "../../../src/vendor/iced/index.ts";

// push rbp; mov rbp,rsp; ret; nop dword [rax]; ret 8; mov eax,0xc3c3c3c3; ret (Intel SDM vol. 2).
const CODE = new Uint8Array([0x55, 0x48, 0x89, 0xe5, 0xc3, 0x0f, 0x1f, 0x00, 0xc2, 0x08, 0x00, 0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3]);

const mode = process.argv[2];
const before = icedLoadInfo().loaded;
let sameObject = true;
if (mode === "prepare") {
  await prepareIced();
} else if (mode === "in-flight") {
  // iced() while the background compile is still running: it must load in place, and the
  // prepare that finishes later must neither fail nor replace the loaded decoder.
  const p = prepareIced();
  const first = iced();
  await p;
  sameObject = iced() === first;
} else if (mode !== "sync") {
  throw new Error(`unknown mode ${mode}`);
}
const afterPrepare = icedLoadInfo().loaded;
const sites = findReturnSites("x86_64", CODE, 0x1000);
const info = icedLoadInfo();
console.log(JSON.stringify({ before, afterPrepare, compiledAhead: info.compiledAhead, sameObject, again: (await prepareIced(), iced() === iced()), sites }));
