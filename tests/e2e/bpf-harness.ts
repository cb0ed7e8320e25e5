/**
 * @module tests/e2e/bpf-harness — builds what the src/bpf/ e2e tests need at test time: the
 * ring-test BPF object (clang), a small C target program (gcc), and file offsets of its
 * functions (nm + readelf), plus the reason to skip when the machine cannot run them.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
export const CACHE = join(ROOT, ".cache", "bpf-tests");
const FIXTURE = join(ROOT, "tests", "fixtures", "bpf", "ring-test.bpf.c");

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** Why these tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (BPF programs, uprobes)";
  for (const tool of ["clang", "gcc", "nm", "readelf"]) if (!has(tool)) return `needs ${tool} (run scripts/setup.sh)`;
  try {
    readFileSync("/usr/include/bpf/bpf_helpers.h");
  } catch {
    return "needs libbpf headers (Debian package libbpf-dev)";
  }
  return undefined;
}

/** clang's __TARGET_ARCH_ name for bpf_tracing.h's PT_REGS_* macros. */
function targetArch(): string {
  return process.arch === "arm64" ? "arm64" : "x86";
}

/** Compile tests/fixtures/bpf/ring-test.bpf.c (with the rejected program when `bad`). */
export function buildRingTestObject(opts: { bad?: boolean } = {}): Uint8Array {
  mkdirSync(CACHE, { recursive: true });
  const out = join(CACHE, opts.bad ? "ring-test-bad.bpf.o" : "ring-test.bpf.o");
  const triplet = run("gcc", ["-dumpmachine"]).trim();
  run("clang", [
    "-O2", "-g", "-target", "bpf", `-D__TARGET_ARCH_${targetArch()}`, `-I/usr/include/${triplet}`,
    ...(opts.bad ? ["-DBAD_PROGRAM"] : []), "-c", FIXTURE, "-o", `${out}.${process.pid}`,
  ]);
  renameSync(`${out}.${process.pid}`, out); // atomic: a concurrent test run never reads half a file
  return new Uint8Array(readFileSync(out));
}

/** Compile tests/fixtures/bpf/<name>.bpf.c (no defines) and return the object's bytes. */
export function buildBpfFixture(name: string): Uint8Array {
  mkdirSync(CACHE, { recursive: true });
  const out = join(CACHE, `${name}.bpf.o`);
  const triplet = run("gcc", ["-dumpmachine"]).trim();
  run("clang", [
    "-O2", "-g", "-target", "bpf", `-D__TARGET_ARCH_${targetArch()}`, `-I/usr/include/${triplet}`,
    "-c", join(ROOT, "tests", "fixtures", "bpf", `${name}.bpf.c`), "-o", `${out}.${process.pid}`,
  ]);
  renameSync(`${out}.${process.pid}`, out); // atomic, as above
  return new Uint8Array(readFileSync(out));
}

// Waits for one byte on stdin (the trigger: the test attaches first), then calls bt_probe_me
// N times with arguments 0..N-1 and prints the sum.
const TARGET_C = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) long bt_probe_me(long x) { __asm__ volatile("" ::: "memory"); return x + 1; }
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 23;
  char c;
  if (read(0, &c, 1) != 1) return 2;
  long s = 0;
  for (long i = 0; i < n; i++) s += bt_probe_me(i);
  printf("%ld\\n", s);
  return 0;
}
`;

/** Build the C target; returns its absolute path. */
export function buildTarget(): string {
  mkdirSync(CACHE, { recursive: true });
  const src = join(CACHE, `target.${process.pid}.c`);
  const bin = join(CACHE, "target");
  writeFileSync(src, TARGET_C);
  run("gcc", ["-O1", "-g", "-o", `${bin}.${process.pid}`, src]);
  unlinkSync(src);
  // Atomic replace: a target still running from a concurrent test run keeps its own inode.
  renameSync(`${bin}.${process.pid}`, bin);
  return bin;
}

/**
 * File offset of `symbol` in `binary`: its virtual address (nm) mapped through the PT_LOAD
 * segment that contains it (readelf -l): offset = vaddr - p_vaddr + p_offset.
 */
export function fileOffsetOf(binary: string, symbol: string): number {
  const line = run("nm", [binary]).split("\n").find((l) => l.endsWith(` ${symbol}`));
  if (line === undefined) throw new Error(`${symbol} not in ${binary}`);
  const vaddr = parseInt(line.split(" ")[0]!, 16);
  for (const l of run("readelf", ["-lW", binary]).split("\n")) {
    const f = l.trim().split(/\s+/);
    if (f[0] !== "LOAD") continue;
    const [offset, va, , , memsz] = [f[1], f[2], f[3], f[4], f[5]].map((x) => parseInt(x ?? "", 16));
    if (vaddr >= va! && vaddr < va! + memsz!) return vaddr - va! + offset!;
  }
  throw new Error(`no PT_LOAD segment holds ${symbol} (0x${vaddr.toString(16)})`);
}

/** Descriptors of this process that point at BPF objects, links or perf events (leak check). */
export function bpfFdsOfThisProcess(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (/bpf|perf_event/.test(target)) out.push(`${fd} -> ${target}`);
    } catch {
      // fd closed between readdir and readlink
    }
  }
  return out;
}

/** Names of BPF programs loaded in the kernel (bpftool when present, else undefined). */
export function loadedProgramNames(): string[] | undefined {
  if (!has("bpftool")) return undefined;
  const progs = JSON.parse(run("bpftool", ["prog", "show", "-j"])) as Array<{ name?: string }>;
  return progs.map((p) => p.name ?? "");
}
