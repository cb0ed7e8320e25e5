/** @module binary/buildinfo — Go build info (.go.buildinfo): toolchain version, main module, dependencies, build settings. */
import { TracerError } from "../errors.ts";
import { ByteReader, corrupt, decodeUtf8, hex } from "./bytes.ts";
import { type ElfFile, PF_W, PF_X, PT_LOAD } from "./elf.ts";
import { parseGoVersion } from "../offsets/version.ts";

/** The one Go version parser lives in src/offsets/version.ts (pure); re-exported for readers of binaries. */
export { parseGoVersion } from "../offsets/version.ts";

export interface GoModule {
  path: string;
  version: string;
  sum?: string;
  replace?: GoModule;
}

export interface GoBuildInfo {
  /** As stored, e.g. "go1.26.8" or "go1.23.0 X:nocoverageredesign". */
  goVersion: string;
  path: string;
  main: GoModule;
  deps: GoModule[];
  settings: { key: string; value: string }[];
}

/** "\xff Go buildinf:" — src/debug/buildinfo/buildinfo.go buildInfoMagic; the header is 16-byte aligned (buildInfoAlign). */
const MAGIC = new Uint8Array([0xff, 0x20, 0x47, 0x6f, 0x20, 0x62, 0x75, 0x69, 0x6c, 0x64, 0x69, 0x6e, 0x66, 0x3a]);
const ALIGN = 16;
/** The header is 32 bytes: magic(14) ptrSize(1) flags(1) then, in the pointer format, two pointers (buildinfo.go). */
const HEADER_SIZE = 32;
const FLAG_BIG_ENDIAN = 0x1;
/** Set by Go ≥ 1.18 linkers: version and modinfo follow the header as varint-length-prefixed strings. */
const FLAG_INLINE = 0x2;
/** Modinfo is framed by 16-byte sentinels (cmd/go/internal/modload/build.go infoStart/infoEnd). */
const SENTINEL_LEN = 16;
/**
 * Oldest Go that beetrace supports, per architecture: the register-based calling convention
 * (ABIInternal) that the probes read arguments from arrived on amd64 in Go 1.17 and on arm64 in
 * Go 1.18 (Go 1.17 and 1.18 release notes, "Compiler").
 */
const MIN_MINOR: Record<ElfFile["machine"], number> = { x86_64: 17, aarch64: 18 };

const NOT_GO_HINT = "pass a binary built by the Go toolchain (go build); beetrace traces Go programs only";

/** Read the Go build info of `elf`. Throws not_go_binary when there is none, unsupported_go_version before the register ABI (Go 1.17 amd64, 1.18 arm64). */
export function readBuildInfo(elf: ElfFile): GoBuildInfo {
  const at = locate(elf);
  if (at === undefined) {
    throw new TracerError("not_go_binary", `${elf.what}: no Go build info (.go.buildinfo) found`, { hint: NOT_GO_HINT });
  }
  const hdr = new ByteReader(elf.readVirtual(at, HEADER_SIZE), `${elf.what}: Go build info header`);
  const ptrSize = hdr.u8(14);
  const flags = hdr.u8(15);
  let goVersion: string;
  let modinfo: Uint8Array;
  if (flags & FLAG_INLINE) {
    const [vers, mod] = readInline(elf, at + HEADER_SIZE);
    goVersion = decodeUtf8(vers);
    modinfo = mod;
  } else {
    if (flags & FLAG_BIG_ENDIAN) {
      throw new TracerError("unsupported_arch", `${elf.what}: Go build info is big-endian`, { hint: "beetrace supports little-endian x86_64 and aarch64 executables" });
    }
    if (ptrSize !== 4 && ptrSize !== 8) corrupt(`${elf.what}: Go build info`, `pointer size ${ptrSize} is not 4 or 8`);
    goVersion = decodeUtf8(readGoString(elf, hdr.uptr(16, ptrSize), ptrSize));
    modinfo = readGoString(elf, hdr.uptr(16 + ptrSize, ptrSize), ptrSize);
  }
  if (goVersion === "") {
    throw new TracerError("not_go_binary", `${elf.what}: Go build info has an empty Go version`, { hint: NOT_GO_HINT });
  }
  const v = parseGoVersion(goVersion);
  const min = MIN_MINOR[elf.machine];
  if (v && v.major === 1 && v.minor < min) {
    const arch = elf.machine === "x86_64" ? "amd64" : "arm64";
    throw new TracerError("unsupported_go_version", `${elf.what}: built with ${goVersion}; beetrace needs Go 1.${min} or newer on ${arch}`, {
      hint: `rebuild the program with Go 1.${min}+: beetrace reads function arguments from registers (the register-based calling convention Go 1.${min} introduced on ${arch})`,
    });
  }
  return { goVersion, ...parseModinfo(stripSentinels(modinfo), elf.what) };
}

/** Address of the build info header: the .go.buildinfo section, else a 16-aligned magic in a data segment. */
function locate(elf: ElfFile): number | undefined {
  const sec = elf.section(".go.buildinfo");
  if (sec) {
    const b = elf.sectionBytes(sec);
    if (b.byteLength >= HEADER_SIZE && startsWithMagic(b, 0)) return sec.addr;
    corrupt(`${elf.what}: .go.buildinfo`, "it does not start with the Go build info magic");
  }
  // No section headers (or renamed): Go's debug/buildinfo looks in the writable, non-executable PT_LOAD.
  for (const seg of elf.segments) {
    if (seg.type !== PT_LOAD || (seg.flags & (PF_X | PF_W)) !== PF_W || seg.filesz === 0) continue;
    const b = elf.readVirtual(seg.vaddr, seg.filesz);
    let i = (ALIGN - (seg.vaddr % ALIGN)) % ALIGN;
    for (; i + HEADER_SIZE <= b.byteLength; i += ALIGN) {
      if (startsWithMagic(b, i)) return seg.vaddr + i;
    }
  }
  return undefined;
}

function startsWithMagic(b: Uint8Array, off: number): boolean {
  for (let j = 0; j < MAGIC.length; j++) if (b[off + j] !== MAGIC[j]) return false;
  return true;
}

/** Two varint-length-prefixed strings starting at `vaddr` (Go ≥ 1.18 format). */
function readInline(elf: ElfFile, vaddr: number): [Uint8Array, Uint8Array] {
  const seg = elf.segments.find((s) => s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  if (!seg) corrupt(`${elf.what}: Go build info`, `strings at ${hex(vaddr)} are not in the file`);
  const r = new ByteReader(elf.readVirtual(vaddr, seg.vaddr + seg.filesz - vaddr), `${elf.what}: Go build info`);
  const [vlen, n1] = r.uleb128(0);
  const vers = r.slice(n1, vlen);
  const [mlen, n2] = r.uleb128(n1 + vlen);
  return [vers, r.slice(n1 + vlen + n2, mlen)];
}

/** A Go string header {data *byte; len int} at `ptr` (pre-1.18 pointer format). */
function readGoString(elf: ElfFile, ptr: number, ptrSize: number): Uint8Array {
  const h = new ByteReader(elf.readVirtual(ptr, 2 * ptrSize), `${elf.what}: Go build info string header`);
  const data = h.uptr(0, ptrSize);
  const len = h.uptr(ptrSize, ptrSize);
  if (len > elf.bytes.byteLength) corrupt(`${elf.what}: Go build info`, `string length ${len} is larger than the file`);
  return elf.readVirtual(data, len);
}

/** Remove the 16-byte sentinels around modinfo; mirrors debug/buildinfo (no framing → no module info). */
function stripSentinels(b: Uint8Array): string {
  // Sentinels are not UTF-8, so strip them from the bytes before decoding.
  if (b.byteLength >= 2 * SENTINEL_LEN + 1 && b[b.byteLength - SENTINEL_LEN - 1] === 0x0a) {
    return decodeUtf8(b.subarray(SENTINEL_LEN, b.byteLength - SENTINEL_LEN));
  }
  return "";
}

/** Parse modinfo lines ("path", "mod", "dep", "=>", "build"), the format runtime/debug.BuildInfo.String writes. */
function parseModinfo(text: string, what: string): Omit<GoBuildInfo, "goVersion"> {
  const out: Omit<GoBuildInfo, "goVersion"> = { path: "", main: { path: "", version: "" }, deps: [], settings: [] };
  let last: GoModule | undefined;
  const lines = text.split("\n");
  // Like runtime/debug.ParseBuildInfo, a final line without "\n" is ignored.
  lines.pop();
  lines.forEach((line, idx) => {
    const bad = (why: string): never => corrupt(`${what}: Go build info`, `module info line ${idx + 1}: ${why}`);
    const tab = line.indexOf("\t");
    const kind = tab < 0 ? line : line.slice(0, tab);
    const rest = tab < 0 ? "" : line.slice(tab + 1);
    switch (kind) {
      case "path":
        out.path = rest;
        break;
      case "mod":
      case "dep": {
        const m = moduleLine(rest.split("\t"), bad);
        if (kind === "mod") out.main = m;
        else out.deps.push(m);
        last = m;
        break;
      }
      case "=>": {
        const f = rest.split("\t");
        if (f.length !== 3) bad(`expected 3 columns for a replacement, got ${f.length}`);
        const target = last ?? bad("replacement with no module on the line before");
        target.replace = { path: f[0] ?? "", version: f[1] ?? "" };
        if (f[2]) target.replace.sum = f[2];
        last = undefined;
        break;
      }
      case "build":
        out.settings.push(buildSetting(rest, bad));
        break;
      default:
        // Unknown lines (e.g. "go\t..." from BuildInfo.String) carry nothing we use.
        break;
    }
  });
  return out;
}

function moduleLine(f: string[], bad: (why: string) => never): GoModule {
  if (f.length !== 2 && f.length !== 3) bad(`expected 2 or 3 columns, got ${f.length}`);
  const m: GoModule = { path: f[0] ?? "", version: f[1] ?? "" };
  if (f[2]) m.sum = f[2];
  return m;
}

/** "key=value" where key and value are Go-quoted when they contain '=', spaces, quotes or control characters. */
function buildSetting(kv: string, bad: (why: string) => never): { key: string; value: string } {
  let key: string;
  let rawValue: string;
  if (kv.startsWith('"') || kv.startsWith("`")) {
    const q = quotedPrefix(kv);
    if (q === undefined) bad("invalid quoted key in build line");
    if (kv[q.length] !== "=") bad("build line missing '=' after quoted key");
    key = unquote(q, bad);
    rawValue = kv.slice(q.length + 1);
  } else {
    const eq = kv.indexOf("=");
    if (eq <= 0) bad(eq === 0 ? "build line with missing key" : "build line missing '='");
    key = kv.slice(0, eq);
    rawValue = kv.slice(eq + 1);
  }
  let value = rawValue;
  if (rawValue.startsWith('"') || rawValue.startsWith("`")) {
    const q = quotedPrefix(rawValue);
    if (q === undefined || q.length !== rawValue.length) bad("invalid quoted value in build line");
    value = unquote(q, bad);
  }
  return { key, value };
}

/** The Go-quoted string at the start of s (strconv.QuotedPrefix), or undefined. */
function quotedPrefix(s: string): string | undefined {
  const q = s[0];
  if (q === "`") {
    const end = s.indexOf("`", 1);
    return end < 0 ? undefined : s.slice(0, end + 1);
  }
  for (let i = 1; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === '"') return s.slice(0, i + 1);
    else if (s[i] === "\n") return undefined;
  }
  return undefined;
}

const SIMPLE_ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'" };

/** strconv.Unquote for the escapes strconv.Quote emits (\a..\v, \xHH, \uHHHH, \UHHHHHHHH, octal). */
function unquote(q: string, bad: (why: string) => never): string {
  if (q.startsWith("`")) return q.slice(1, -1);
  const body = q.slice(1, -1);
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < body.length; i++) {
    const c = body[i] ?? "";
    if (c !== "\\") {
      const cp = body.codePointAt(i) ?? 0;
      const ch = String.fromCodePoint(cp);
      bytes.push(...enc.encode(ch));
      i += ch.length - 1;
      continue;
    }
    const e = body[++i] ?? "";
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) bytes.push(simple.charCodeAt(0));
    else if (e === "x" || e === "u" || e === "U") {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const h = body.slice(i + 1, i + 1 + n);
      if (!/^[0-9a-fA-F]+$/.test(h) || h.length !== n) bad(`bad \\${e} escape in quoted string`);
      const v = parseInt(h, 16);
      if (e === "x") bytes.push(v);
      else if (v > 0x10ffff) bad("escape is not a valid code point");
      else bytes.push(...enc.encode(String.fromCodePoint(v)));
      i += n;
    } else if (/[0-7]/.test(e)) {
      const o = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(o) || parseInt(o, 8) > 255) bad("bad octal escape in quoted string");
      bytes.push(parseInt(o, 8));
      i += 2;
    } else bad(`unknown escape \\${e} in quoted string`);
  }
  return decodeUtf8(new Uint8Array(bytes));
}
