/**
 * @module bench/bpf-profile — the report of bench/bpf-profile.sh: from `perf script -F ip,sym`
 * of the sample process (DIR/stacks.txt) and the JIT images bench/jit-dump.c wrote (DIR/jit/),
 * - the uprobe path's share by function, self and inclusive (a sample is in the uprobe path when
 *   its kernel stack holds the uprobe trap's handler; perf may throttle its rate, so shares, not
 *   times, are what compare between runs);
 * - the BPF call sites of the helpers that cost most (the return address in the program, as
 *   function + offset), with their samples;
 * - each program function's hottest instructions (x86-64, decoded with iced-x86): a sample lands
 *   on the instruction after one that stalled (a cache miss shows after its load).
 *
 *   node_modules/.bin/bun bench/bpf-profile.ts DIR REQUESTS
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Decoder, DecoderOptions, Formatter, FormatterSyntax, Instruction } from "iced-x86";

const [dir, requestsArg] = process.argv.slice(2);
if (!dir || !requestsArg) throw new Error("usage: bun bench/bpf-profile.ts DIR REQUESTS");
const requests = Number(requestsArg);

interface Frame {
  ip: bigint;
  sym: string;
}
const stacks: Frame[][] = [];
let cur: Frame[] = [];
for (const line of readFileSync(join(dir, "stacks.txt"), "utf8").split("\n")) {
  const t = line.trim();
  if (!t) {
    if (cur.length) stacks.push(cur);
    cur = [];
    continue;
  }
  const sp = t.indexOf(" ");
  const ip = sp < 0 ? t : t.slice(0, sp);
  if (!/^[0-9a-f]+$/.test(ip)) continue;
  cur.push({ ip: BigInt("0x" + ip), sym: sp < 0 ? "" : t.slice(sp + 1) });
}
if (cur.length) stacks.push(cur);

const inUprobe = stacks.filter((s) => s.some((f) => f.sym === "uprobe_notify_resume" || f.sym === "handle_swbp"));
const pct = (n: number) => `${((100 * n) / Math.max(1, inUprobe.length)).toFixed(1).padStart(5)} %`;
console.log(`samples ${stacks.length}, in the uprobe path ${inUprobe.length} (${((100 * inUprobe.length) / Math.max(1, stacks.length)).toFixed(1)} % of the sample process's)`);

const self = new Map<string, number>();
const incl = new Map<string, number>();
for (const s of inUprobe) {
  self.set(s[0]!.sym, (self.get(s[0]!.sym) ?? 0) + 1);
  for (const sym of new Set(s.map((f) => f.sym))) incl.set(sym, (incl.get(sym) ?? 0) + 1);
}
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
console.log("\nself, share of the uprobe path:");
for (const [sym, n] of top(self, 30)) console.log(`  ${pct(n)}  ${sym}`);
console.log("\ninclusive:");
for (const [sym, n] of top(incl, 40)) console.log(`  ${pct(n)}  ${sym}`);

// The JIT images: every function of every dumped program, by address.
interface Func {
  prog: string;
  addr: bigint;
  len: number;
  code: Uint8Array;
}
const funcs: Func[] = [];
const jit = join(dir, "jit");
for (const f of readdirSync(jit).filter((n) => n.endsWith(".ksyms"))) {
  const prog = f.slice(0, -".ksyms".length);
  const img = readFileSync(join(jit, `${prog}.bin`));
  let off = 0;
  for (const l of readFileSync(join(jit, f), "utf8").trim().split("\n")) {
    const [a, n] = l.split(" ");
    if (!a || !n) continue;
    const len = Number(n);
    funcs.push({ prog, addr: BigInt("0x" + a), len, code: img.subarray(off, off + len) });
    off += len;
  }
}
const funcOf = (ip: bigint) => funcs.find((f) => ip >= f.addr && ip < f.addr + BigInt(f.len));
const nameAt = (ip: bigint, sym: string) => {
  const f = funcOf(ip);
  return f ? `${sym.replace(/^bpf_prog_[0-9a-f]+_/, "")}+0x${(ip - f.addr).toString(16)}` : `${sym} ${ip.toString(16)}`;
};

console.log("\nhelper call sites (the program's return address), samples:");
for (const helper of ["bpf_probe_read_user", "bpf_ringbuf_output", "bpf_ktime_get_boot_ns", "bpf_user_rnd_u32", "bpf_loop"]) {
  const sites = new Map<string, number>();
  for (const s of inUprobe) {
    const i = s.map((f) => f.sym).lastIndexOf(helper);
    if (i < 0) continue;
    const caller = s.slice(i + 1).find((f) => f.sym.startsWith("bpf_prog_"));
    if (caller) sites.set(nameAt(caller.ip, caller.sym), (sites.get(nameAt(caller.ip, caller.sym)) ?? 0) + 1);
  }
  if (sites.size === 0) continue;
  console.log(`  ${helper}:`);
  for (const [site, n] of top(sites, 12)) console.log(`    ${pct(n)}  ${site}`);
}

console.log("\nhottest instructions per program function (samples on the instruction; a stall shows on the next one):");
const hot = new Map<bigint, number>();
for (const s of inUprobe) if (s[0]!.sym.startsWith("bpf_prog_")) hot.set(s[0]!.ip, (hot.get(s[0]!.ip) ?? 0) + 1);
const fmt = new Formatter(FormatterSyntax.Intel);
for (const f of funcs) {
  const dec = new Decoder(64, f.code, DecoderOptions.None);
  dec.ip = f.addr;
  const ins = new Instruction();
  const lines: [number, string][] = [];
  let total = 0;
  while (dec.canDecode) {
    dec.decodeOut(ins);
    const n = hot.get(ins.ip) ?? 0;
    total += n;
    if (n) lines.push([n, `+0x${(ins.ip - f.addr).toString(16).padStart(4)}  ${fmt.format(ins)}`]);
  }
  if (total === 0) continue;
  const sym = inUprobe.flatMap((s) => s).find((fr) => fr.ip >= f.addr && fr.ip < f.addr + BigInt(f.len))?.sym ?? f.prog;
  console.log(`  ${sym.replace(/^bpf_prog_[0-9a-f]+_/, "")} (${f.prog}): ${pct(total)} self`);
  for (const [n, l] of lines.sort((a, b) => b[0] - a[0]).slice(0, 6)) console.log(`    ${pct(n)}  ${l}`);
}
console.log(`\nverified instructions (program, count):\n${readFileSync(join(jit, "verified.txt"), "utf8").trim().replace(/^/gm, "  ")}`);
console.log(`\nrequests offered in the window: ${requests}`);
