/**
 * @module tests/unit/binary/probe-inventory — a script, not a test: which probe / marker
 * functions exist in a small net/http server + client program (HTTP/2 over TLS, a hijacking
 * handler; probe-sites-fixture.ts) for each Go release, and where their entry probe would sit.
 * docs/probe-placement.md holds its output.
 *
 *   node_modules/.bin/bun tests/unit/binary/probe-inventory.ts [go1.21.13 go1.27.4 ...]
 *
 * Uses beetrace's own readers (openGoBinary; for Go < 1.18, whose build info beetrace refuses,
 * the ELF and pclntab readers directly) and entryProbeSite. The go command downloads each
 * toolchain on first use (about 70 MB each).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { openGoBinary } from "../../../src/binary/analyze.ts";
import { ElfFile } from "../../../src/binary/elf.ts";
import { readPclntab, type PclnTable } from "../../../src/binary/gopclntab.ts";
import { entryProbeSite } from "../../../src/binary/probe-sites.ts";
import { buildProbeFixture } from "./probe-sites-fixture.ts";

/** Newest patch of each minor (go list -m -versions golang.org/toolchain, linux-amd64). */
const DEFAULT_TOOLCHAINS = [
  "go1.17.13",
  "go1.18.10",
  "go1.19.13",
  "go1.20.14",
  "go1.21.13",
  "go1.22.12",
  "go1.23.12",
  "go1.24.13",
  "go1.25.14",
  "go1.26.11",
  "go1.27.4",
];

export const INVENTORY_SYMBOLS = [
  "net/http.serverHandler.ServeHTTP",
  "net/http.(*Transport).roundTrip",
  "net/http.(*response).finishRequest",
  "net/http.(*response).Hijack",
  "net/http.(*conn).serve.func1",
  "net/http.(*http2responseWriter).handlerDone",
  "net/http.(*http2serverConn).runHandler",
  "net/http.(*http2serverConn).runHandler.func1",
  "net/http.http2Handler.ServeHTTP",
  "net/http/internal/http2.(*serverConn).runHandler",
  "net/http/internal/http2.(*serverConn).runHandler.func1",
  "net/http/internal/http2.(*responseWriter).handlerDone",
];

function main(): void {
  const toolchains = process.argv.length > 2 ? process.argv.slice(2) : DEFAULT_TOOLCHAINS;
  for (const tc of toolchains) {
    let bin: string;
    try {
      bin = buildProbeFixture({ toolchain: tc });
    } catch (e) {
      console.log(`## ${tc}: build failed: ${(e instanceof Error ? e.message : String(e)).split("\n").slice(0, 3).join(" | ")}`);
      continue;
    }
    let proto = "";
    try {
      proto = execFileSync(bin, { encoding: "utf8", timeout: 20_000 }).trim().replace(/\n/g, "; ");
    } catch (e) {
      proto = `run failed: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
    }
    const bytes = new Uint8Array(readFileSync(bin));
    let pcln: PclnTable;
    let elf: ElfFile;
    let note = "";
    try {
      const a = openGoBinary(bytes, bin);
      pcln = a.pcln;
      elf = a.elf;
    } catch (e) {
      note = ` (openGoBinary refused it: ${e instanceof Error ? e.message : String(e)}; read with ElfFile + readPclntab)`;
      elf = ElfFile.parse(bytes, bin);
      pcln = readPclntab(elf);
    }
    console.log(`## ${tc}${note}\nrun: ${proto}`);
    for (const name of INVENTORY_SYMBOLS) {
      const fn = pcln.find(name);
      if (!fn) {
        console.log(`  -  ${name}`);
        continue;
      }
      const s = entryProbeSite(elf.machine, elf.readVirtual(fn.entry, Math.min(64, fn.end - fn.entry)), fn.entry);
      const where = s.emulated ? `${s.text} at +${s.addr - fn.entry} (emulated, ${s.kind})` : `entry, NOT emulated: ${s.reason}`;
      console.log(`  +  ${name}  [${fn.end - fn.entry} B]  ${where}`);
    }
  }
}

if (import.meta.main) main();
