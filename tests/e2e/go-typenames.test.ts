/**
 * @module tests/e2e/go-typenames — src/binary/go-typenames.ts finds, in the file, the same type
 * name offsets a running program's type descriptors hold (internal/abi.Type.Str): the program
 * (tests/fixtures/go/typenames) prints them itself. Every pinned toolchain, plain, stripped
 * (no symbol table: the section rule alone) and PIE (.data.rel.ro). Needs Go, not root.
 */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { GoTypeNames } from "../../src/binary/go-typenames.ts";
import { ElfFile } from "../../src/binary/elf.ts";
import { buildFixture, goMatrixUnavailable, goToolchains } from "../harness/go.ts";

const reason = goMatrixUnavailable();

describe.skipIf(reason !== undefined)(`type name offsets${reason ? ` (skipped: ${reason})` : ""}`, () => {
  // go1.20.14 as well: the oldest release with every type the fixture names
  // (tls.CertificateVerificationError is Go 1.20).
  for (const toolchain of ["go1.20.14", ...goToolchains()]) {
    for (const mode of ["default", "ldflags-s-w", "pie"] as const) {
      test(`${toolchain} ${mode}: the file gives the offsets the program's descriptors hold`, async () => {
        const exe = await buildFixture({ dir: "tests/fixtures/go/typenames", toolchain, mode });
        const printed = execFileSync(exe, { encoding: "utf8" })
          .trim()
          .split("\n")
          .map((l) => l.split(" ") as [string, string]);
        const names = new GoTypeNames(ElfFile.parse(new Uint8Array(readFileSync(exe)), exe));
        expect(names.available).toBe(true);
        expect(printed.map(([n]) => [n, names.nameOff(n)])).toEqual(printed.map(([n, off]) => [n, Number(off)]));
        expect(names.nameOff("*no.SuchType")).toBeUndefined();
      }, 300_000);
    }
  }
});
