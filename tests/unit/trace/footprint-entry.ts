/**
 * @module tests/unit/trace/footprint-entry — run in a fresh process by footprint.test.ts (the
 * decoder is loaded once per process, and the code pages released are this process's): decodes,
 * drops the decoder, decodes again, releases the code pages, decodes again, and prints JSON.
 */
import { readFileSync } from "node:fs";
import { findReturnSites } from "../../../src/binary/returns.ts";
import { icedLoadInfo, prepareIced, releaseIced } from "../../../src/vendor/iced/index.ts";
import { releaseCodePages } from "../../../src/bpf/pageout.ts";
import { trimStartup } from "../../../src/trace/footprint.ts";

// push rbp; mov rbp,rsp; ret; nop dword [rax]; ret 8; mov eax,0xc3c3c3c3; ret (Intel SDM vol. 2).
const CODE = new Uint8Array([0x55, 0x48, 0x89, 0xe5, 0xc3, 0x0f, 0x1f, 0x00, 0xc2, 0x08, 0x00, 0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3]);
const rssKb = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0);

await prepareIced();
const first = findReturnSites("x86_64", CODE, 0x1000);
releaseIced();
const released = !icedLoadInfo().loaded;
const second = findReturnSites("x86_64", CODE, 0x1000);
const reloaded = icedLoadInfo().loaded;
const rssBefore = rssKb();
const pages = releaseCodePages();
const rssAfter = rssKb();
const third = findReturnSites("x86_64", CODE, 0x1000);
for (const stage of ["analysed", "planned", "attached"] as const) trimStartup(stage);
const fourth = findReturnSites("x86_64", CODE, 0x1000);
console.log(JSON.stringify({ first, second, third, fourth, released, reloaded, advisedBytes: pages.advisedBytes, error: pages.error ?? null, rssBefore, rssAfter }));
