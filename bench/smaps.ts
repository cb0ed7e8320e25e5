#!/usr/bin/env bun
/**
 * Where a process's resident memory is: /proc/PID/smaps grouped by mapping, for bench/memory.sh
 * and bench/RESULTS.md (memory).
 *
 *   bun bench/smaps.ts PID [--top 12] [--json]
 *
 * Prints VmRSS/VmHWM (/proc/PID/status), the smaps_rollup totals (anonymous vs file-backed,
 * clean vs dirty), and the largest mappings by Rss, with same-named mappings summed: the
 * executable's own image, [heap] (malloc), anonymous regions (JSC heap, mimalloc, WASM memory;
 * no name in smaps), the BPF ring buffer (anon_inode:bpf-ringbuf or [bpf-ringbuf]) and the
 * libbpf bundle extracted to $TMPDIR. Sizes in KiB as the kernel reports them, printed in MiB.
 */
import { readFileSync } from "node:fs";

export interface Mapping {
  name: string;
  perms: string;
  sizeKb: number;
  rssKb: number;
  anonKb: number;
  privateDirtyKb: number;
}

export function readSmaps(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { name: head[4] || "[anon]", perms: head[3] ?? "", sizeKb: 0, rssKb: 0, anonKb: 0, privateDirtyKb: 0 };
      out.push(cur);
      continue;
    }
    const kv = /^(\w+):\s+(\d+) kB/.exec(line);
    if (!kv || !cur) continue;
    const v = Number(kv[2]);
    if (kv[1] === "Size") cur.sizeKb = v;
    else if (kv[1] === "Rss") cur.rssKb = v;
    else if (kv[1] === "Anonymous") cur.anonKb = v;
    else if (kv[1] === "Private_Dirty") cur.privateDirtyKb = v;
  }
  return out;
}

export function readRollup(pid: number): Record<string, number> {
  const r: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/smaps_rollup`, "utf8").split("\n")) {
    const kv = /^(\w+):\s+(\d+) kB/.exec(line);
    if (kv) r[kv[1] as string] = Number(kv[2]);
  }
  return r;
}

export function readStatus(pid: number): Record<string, number> {
  const r: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const kv = /^(Vm\w+|Rss\w+):\s+(\d+) kB/.exec(line);
    if (kv) r[kv[1] as string] = Number(kv[2]);
  }
  return r;
}

const mib = (kb: number) => (kb / 1024).toFixed(1);

/** Mappings grouped: file mappings by path, anonymous by size class so the JSC/mimalloc arenas stand out. */
export function grouped(maps: Mapping[]): { name: string; count: number; sizeKb: number; rssKb: number; anonKb: number }[] {
  const g = new Map<string, { name: string; count: number; sizeKb: number; rssKb: number; anonKb: number }>();
  for (const m of maps) {
    let key = m.name;
    if (key === "[anon]") key = m.perms.startsWith("---") ? "[anon, no access (guard/reserve)]" : `[anon ${m.perms}]`;
    const e = g.get(key) ?? { name: key, count: 0, sizeKb: 0, rssKb: 0, anonKb: 0 };
    e.count++;
    e.sizeKb += m.sizeKb;
    e.rssKb += m.rssKb;
    e.anonKb += m.anonKb;
    g.set(key, e);
  }
  return [...g.values()].sort((a, b) => b.rssKb - a.rssKb);
}

/** Anonymous read-write mappings, largest resident first (one JSC block region, WASM memory, ring...). */
export function bigAnon(maps: Mapping[], n: number): Mapping[] {
  return maps.filter((m) => m.name === "[anon]" && m.rssKb > 0).sort((a, b) => b.rssKb - a.rssKb).slice(0, n);
}

if (import.meta.main) {
  const pid = Number(process.argv[2]);
  if (!Number.isInteger(pid) || pid <= 0) {
    console.error("usage: bun bench/smaps.ts PID [--top 12] [--json]");
    process.exit(2);
  }
  const ti = process.argv.indexOf("--top");
  const top = ti > 0 ? Number(process.argv[ti + 1]) : 12;
  const maps = readSmaps(pid);
  const roll = readRollup(pid);
  const st = readStatus(pid);
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ status: st, rollup: roll, groups: grouped(maps).slice(0, top) }));
  } else {
    console.log(`pid ${pid}: VmRSS ${mib(st.VmRSS ?? 0)} MiB (anon ${mib(st.RssAnon ?? 0)}, file ${mib(st.RssFile ?? 0)}, shmem ${mib(st.RssShmem ?? 0)}), VmHWM ${mib(st.VmHWM ?? 0)} MiB`);
    console.log(`rollup: Pss ${mib(roll.Pss ?? 0)}  Shared_Clean ${mib(roll.Shared_Clean ?? 0)}  Private_Clean ${mib(roll.Private_Clean ?? 0)}  Private_Dirty ${mib(roll.Private_Dirty ?? 0)}  Anonymous ${mib(roll.Anonymous ?? 0)} MiB`);
    console.log("largest mappings (same name summed):  RSS MiB | anon MiB | mapped MiB | count | name");
    for (const e of grouped(maps).slice(0, top)) {
      console.log(`  ${mib(e.rssKb).padStart(7)} | ${mib(e.anonKb).padStart(8)} | ${mib(e.sizeKb).padStart(10)} | ${String(e.count).padStart(5)} | ${e.name}`);
    }
    console.log("largest anonymous regions:  RSS MiB / mapped MiB  perms");
    for (const m of bigAnon(maps, 8)) console.log(`  ${mib(m.rssKb).padStart(7)} / ${mib(m.sizeKb).padStart(8)}  ${m.perms}`);
  }
}
