/**
 * @module tests/unit/binary/gopclntab-find.test — PclnTable.find without the full name index
 * gives exactly what the index over funcs() gives: every name of a real Go build, plus name
 * tables edited to hold the cases where bytes and decoded strings differ (byte order marks,
 * invalid UTF-8, shared names, a name offset into the middle of another name).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ElfFile } from "../../../src/binary/elf.ts";
import { readPclntab, type GoFunc } from "../../../src/binary/gopclntab.ts";
import { TracerError } from "../../../src/errors.ts";
import { buildGoProgram, FIXTURE, haveGo, putLE } from "./go-build.ts";

/** What find() answered before it stopped decoding every name: the first function per decoded name. */
function indexOf(funcs: GoFunc[]): Map<string, GoFunc> {
  const m = new Map<string, GoFunc>();
  for (const f of funcs) if (!m.has(f.name)) m.set(f.name, f);
  return m;
}

/**
 * Lookups on a table that has not listed its functions, so find() takes the byte path. A name
 * that is not printable ASCII gets a table of its own: find() may answer some of those (U+FFFD,
 * surrogates) from the full index, which then serves every later lookup on that table.
 */
function freshFind(bytes: Uint8Array, names: string[]): (GoFunc | undefined)[] {
  const shared = readPclntab(ElfFile.parse(bytes));
  return names.map((n) => (/^[\x20-\x7e]*$/.test(n) ? shared : readPclntab(ElfFile.parse(bytes))).find(n));
}

/** pcHeader fields we edit (src/runtime/symtab.go `type pcHeader`, 64-bit): funcnameOffset, pclnOffset. */
function layout(bytes: Uint8Array): { tab: number; names: number; pcln: number; nfunc: number } {
  const sec = ElfFile.parse(bytes).section(".gopclntab");
  if (!sec) throw new Error("fixture has no .gopclntab");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const word = (i: number) => Number(dv.getBigUint64(sec.offset + 8 + i * 8, true));
  return { tab: sec.offset, nfunc: word(0), names: sec.offset + word(3), pcln: sec.offset + word(7) };
}

/** File offset of function i's name and its _func.nameOff field. */
function nameAt(bytes: Uint8Array, i: number): { nameOffField: number; nameOff: number; at: number } {
  const { names, pcln } = layout(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const funcoff = dv.getUint32(pcln + i * 8 + 4, true);
  const nameOffField = pcln + funcoff + 4;
  const nameOff = dv.getInt32(nameOffField, true);
  return { nameOffField, nameOff, at: names + nameOff };
}

describe.skipIf(!haveGo())("PclnTable.find by name bytes (oracle: the index over funcs())", () => {
  async function fixture(): Promise<Uint8Array> {
    const bin = await buildGoProgram({ source: FIXTURE.source, files: FIXTURE.files, mode: "stripped-ldflags" });
    return new Uint8Array(readFileSync(bin));
  }

  test("every function name, and names that are suffixes or prefixes of real ones, resolve as the index does", async () => {
    const bytes = await fixture();
    const all = readPclntab(ElfFile.parse(bytes)).funcs();
    expect(all.length).toBeGreaterThan(1000);
    const index = indexOf(all);
    const names = [...index.keys()];
    // Near misses: a real name minus its first or last character, or with a package prefix.
    const misses = names.slice(0, 300).flatMap((n) => [n.slice(1), n.slice(0, -1), `x/${n}`, `${n}\u0000`, ""]);
    const wanted = [...names, ...misses];
    const got = freshFind(bytes, wanted);
    const bad = wanted.filter((n, i) => JSON.stringify(got[i]) !== JSON.stringify(index.get(n)));
    expect(bad).toEqual([]);
    // At least one near miss is itself a real name (e.g. "x/..." of "y/x/..."), so boundaries are exercised.
    expect(misses.some((n) => index.has(n))).toBe(true);
  });

  test("byte order marks, invalid UTF-8, shared and duplicate names give the index's answer", async () => {
    const bytes = (await fixture()).slice();
    const before = readPclntab(ElfFile.parse(bytes)).funcs();
    const byName = new Map(before.map((f, i) => [f.name, i]));
    const pick = (name: string) => {
      const i = byName.get(name);
      if (i === undefined) throw new Error(`fixture lacks ${name}`);
      return i;
    };
    // Only the bytes of names are overwritten (same length), so the table stays valid.
    const a = nameAt(bytes, pick("main.main"));
    bytes.set([0xef, 0xbb, 0xbf], a.at); // BOM + "n.main": decodes to "n.main"
    const b = nameAt(bytes, pick("net/http.serverHandler.ServeHTTP"));
    bytes.set([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf], b.at); // two BOMs: decodes to "\uFEFF" + rest
    const c = nameAt(bytes, pick("net/http.(*Transport).roundTrip"));
    bytes[c.at + 3] = 0xff; // invalid UTF-8: decodes with U+FFFD
    // Function "runtime.main" now shares the name string of "runtime.mallocgc" (first in table order wins).
    const d = nameAt(bytes, pick("runtime.mallocgc"));
    putLE(bytes, nameAt(bytes, pick("runtime.main")).nameOffField, 4, d.nameOff);
    // "runtime.schedule" now points into the middle of "runtime.mallocgc": it decodes as "mallocgc".
    putLE(bytes, nameAt(bytes, pick("runtime.schedule")).nameOffField, 4, d.nameOff + "runtime.".length);

    const after = readPclntab(ElfFile.parse(bytes)).funcs();
    const index = indexOf(after);
    const edited = [pick("main.main"), pick("net/http.serverHandler.ServeHTTP"), pick("net/http.(*Transport).roundTrip")].map((i) => after[i]!.name);
    expect(edited[0]).toBe("n.main");
    expect(edited[1]?.startsWith("\uFEFF")).toBe(true);
    expect(edited[2]).toContain("\uFFFD");
    const wanted = [...edited, "main.main", "\uFEFFn.main", "runtime.mallocgc", "runtime.main", "mallocgc", "runtime.schedule", ...index.keys()];
    const got = freshFind(bytes, wanted);
    const bad = wanted.filter((n, i) => JSON.stringify(got[i]) !== JSON.stringify(index.get(n)));
    expect(bad).toEqual([]);
    expect(got[0]?.entry).toBe(before[pick("main.main")]!.entry);
    expect(got[wanted.indexOf("runtime.main")]).toBeUndefined();
    expect(got[wanted.indexOf("mallocgc")]?.entry).toBe(before[pick("runtime.schedule")]!.entry);
  });

  test("a name offset outside the name table is corrupt_binary from find() too", async () => {
    const bytes = (await fixture()).slice();
    const { nfunc } = layout(bytes);
    const funcs = readPclntab(ElfFile.parse(bytes)).funcs();
    const lastName = funcs[nfunc - 1]!.name;
    expect(funcs.filter((f) => f.name === lastName).length).toBe(1);
    // Point the last function's name outside the table: its old name is still in the name table
    // but no record refers to it any more, so find() must walk every record and meet the bad one.
    putLE(bytes, nameAt(bytes, nfunc - 1).nameOffField, 4, 0x7fffffff);
    const t = readPclntab(ElfFile.parse(bytes));
    expect(t.find("main.main")?.name).toBe("main.main"); // found before the walk reaches the damage
    let err: unknown;
    try {
      t.find(lastName);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracerError);
    expect((err as TracerError).code).toBe("corrupt_binary");
    expect((err as TracerError).message).toContain("name offset");
  });
});
