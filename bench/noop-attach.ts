/**
 * @module bench/noop-attach — attaches bench/noop.bpf.c where beetrace would attach (the entry
 * and every RET of each probed function, pid-filtered, by file offset), to measure the bare
 * uprobe cost on a traced service. Same planning inputs as the tracer: the probed functions of PROBES and
 * resolveSymbol() from src/binary/analyze.ts, attachUprobe() from src/bpf/link.ts.
 *
 * Standalone (root):
 *   node_modules/.bin/bun bench/noop-attach.ts --pid PID [--object .cache/bench/noop.bpf.o]
 * prints "attached N uprobes" on stdout, then on SIGINT/SIGTERM or stdin EOF prints the hit
 * counts as JSON and detaches.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openGoBinary, resolveSymbol } from "../src/binary/analyze.ts";
import { readTargetBytes } from "../src/target/executable.ts";
import { PROBES } from "../src/probes/registry.ts";
import { BpfObject } from "../src/bpf/object.ts";
import { attachUprobe, LinkSet } from "../src/bpf/link.ts";
import { BENCH_CACHE, parseOptions } from "./lib.ts";

export interface NoopProbes extends Disposable {
  uprobes: number;
  /** Hits so far (entry, return) as counted by the BPF programs. */
  hits(): { entry: number; ret: number };
}

/**
 * Attach noop_entry at the FIRST instruction of each probed function and noop_return at each of
 * its RETs in `pid`: the peers' placement (and beetrace's before it moved to emulated sites), the
 * "bare entry+RET floor" the tracer's cost is compared with.
 */
export function attachNoop(objectBytes: Uint8Array, pid: number): NoopProbes {
  // Uprobes go on the inode the process runs, through /proc like TraceSession's attach target.
  const exe = `/proc/${pid}/exe`;
  const analysis = openGoBinary(readTargetBytes(exe), exe);
  const object = BpfObject.open(objectBytes, "noop");
  const links = new LinkSet();
  try {
    object.load();
    // The floor is the net/http spine's: the functions the sample runs per request (other
    // probes' libraries and the optional x/net entries are not in it).
    for (const name of PROBES.filter((p) => p.object.name === "nethttp").flatMap((p) => p.uprobes.filter((u) => !u.optional).map((u) => u.symbol))) {
      const s = resolveSymbol(analysis, name);
      if (!s.resolved) throw new Error(`${name}: ${s.reason}`);
      links.add(attachUprobe(object.program("noop_entry"), { binaryPath: exe, fileOffset: s.fileOffset, pid }));
      for (const ret of s.returns) {
        const fileOffset = analysis.elf.vaddrToFileOffset(ret);
        if (fileOffset === undefined) throw new Error(`${name}: RET 0x${ret.toString(16)} is not file-backed`);
        links.add(attachUprobe(object.program("noop_return"), { binaryPath: exe, fileOffset, pid }));
      }
    }
  } catch (e) {
    links[Symbol.dispose]();
    object[Symbol.dispose]();
    throw e;
  }
  return {
    uprobes: links.size,
    hits: () => ({ entry: Number(object.readBss("entry_hits")), ret: Number(object.readBss("return_hits")) }),
    [Symbol.dispose]() {
      links[Symbol.dispose]();
      object[Symbol.dispose]();
    },
  };
}

async function main(): Promise<void> {
  const o = parseOptions(Bun.argv.slice(2), { pid: "", object: join(BENCH_CACHE, "noop.bpf.o") });
  const pid = Number(o.pid);
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error("--pid PID is required");
  using probes = attachNoop(new Uint8Array(readFileSync(o.object)), pid);
  process.stdout.write(`attached ${probes.uprobes} uprobes\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    process.stdin.on("end", resolve);
    process.stdin.resume();
  });
  process.stdout.write(JSON.stringify(probes.hits()) + "\n");
  process.stdin.pause();
}

if (import.meta.main) await main();
