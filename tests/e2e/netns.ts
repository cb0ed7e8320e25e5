/**
 * @module tests/e2e/netns — a chain of three network namespaces joined by veth pairs, for e2e
 * tests of services on different addresses (tests/e2e/live-join.test.ts, tests/e2e/chain3.test.ts):
 *
 *   test (root ns) 10.X.0.1 ── 10.X.0.2 ns[0] 10.X.1.1 ── 10.X.1.2 ns[1] 10.X.2.1 ── 10.X.2.2 ns[2]
 *
 * and the same links in IPv6 (ULA fdXX:YYYY:0:HOP+1::SIDE). Each caller is on the link of the
 * service it calls: no routing. `ip netns exec` execs its command, so a service started there
 * keeps its pid and only its network and mount namespaces differ: /proc/PID/exe and
 * pid-filtered uprobes work as usual from the root namespaces.
 *
 * Names are unique per run and fit IFNAMSIZ (15); the /24s are picked at random in 10.0.0.0/8.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { waitFor } from "./harness.ts";

export type Hop = 0 | 1 | 2;
/** 1: the caller's end of hop's link, 2: the service's. */
export type Side = 1 | 2;

export interface ChainNetwork {
  /** The three namespaces, in chain order. */
  ns: readonly [string, string, string];
  /** IPv4 address of `side` of link `hop` (hop 0: root ↔ ns[0]). */
  addr(hop: Hop, side: Side): string;
  /** The same in IPv6 (written by Go with a "::" gap). */
  addr6(hop: Hop, side: Side): string;
  /** Creates the namespaces and links (throws naming the failing `ip` command). */
  setUp(): void;
  /** Deletes whatever setUp created (safe to call when it did not run or failed halfway). */
  tearDown(): void;
}

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
}

/** A chain network whose namespace and link names start with `prefix` (2-3 letters). */
export function chainNetwork(prefix: string): ChainNetwork {
  const tag = Math.random().toString(16).slice(2, 7);
  const netA = 200 + Math.floor(Math.random() * 50);
  const netB = Math.floor(Math.random() * 250);
  const ula = `fd${Math.floor(Math.random() * 256).toString(16).padStart(2, "0")}:1${tag.slice(0, 3)}`;
  const ns = [`bt-${prefix}-${tag}-0`, `bt-${prefix}-${tag}-1`, `bt-${prefix}-${tag}-2`] as const;
  const veth = (hop: Hop, end: "a" | "b") => `b${prefix}${tag}${hop}${end}`;
  const addr = (hop: Hop, side: Side) => `10.${netA}.${netB + hop}.${side}`;
  const addr6 = (hop: Hop, side: Side) => `${ula}:0:${hop + 1}::${side}`;
  const made: string[] = [];
  let rootLink = false;
  return {
    ns,
    addr,
    addr6,
    setUp() {
      for (const n of ns) {
        ip("netns", "add", n);
        made.push(n);
        ip("-n", n, "link", "set", "lo", "up");
      }
      // One veth pair per hop: root ↔ ns[0], ns[0] ↔ ns[1], ns[1] ↔ ns[2].
      for (const hop of [0, 1, 2] as const) {
        const a = hop === 0 ? undefined : ns[hop - 1];
        const b = ns[hop];
        const va = veth(hop, "a");
        const vb = veth(hop, "b");
        ip("link", "add", va, "type", "veth", "peer", "name", vb);
        if (hop === 0) rootLink = true;
        if (a !== undefined) ip("link", "set", va, "netns", a);
        ip("link", "set", vb, "netns", b);
        const inA = a !== undefined ? ["-n", a] : [];
        ip(...inA, "addr", "add", `${addr(hop, 1)}/30`, "dev", va);
        ip(...inA, "-6", "addr", "add", `${addr6(hop, 1)}/64`, "dev", va, "nodad");
        ip(...inA, "link", "set", va, "up");
        ip("-n", b, "addr", "add", `${addr(hop, 2)}/30`, "dev", vb);
        ip("-n", b, "-6", "addr", "add", `${addr6(hop, 2)}/64`, "dev", vb, "nodad");
        ip("-n", b, "link", "set", vb, "up");
      }
    },
    tearDown() {
      // Deleting a namespace deletes its veth ends, and with them their peers (the root's too).
      for (const n of made.splice(0)) spawnSync("ip", ["netns", "delete", n]);
      if (rootLink) spawnSync("ip", ["link", "delete", veth(0, "a")]);
      rootLink = false;
    },
  };
}

/** host:port as a URL or listen address writes it. */
export const hostPort = (host: string, port: number): string => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);

export interface NsService {
  name: string;
  pid: number;
  proc: ChildProcess;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts `argv` in network namespace `netns` and resolves once it prints "listening on"
 * (rejects with its stderr when it exits first, or after 15 s). Pushes the process on `all`
 * first, so an afterAll can kill it whatever happens.
 */
export async function startIn(netns: string, name: string, argv: string[], all: ChildProcess[]): Promise<NsService> {
  const proc = spawn("ip", ["netns", "exec", netns, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
  all.push(proc);
  let out = "";
  let err = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<void>((r) => proc.on("exit", () => r()));
  await waitFor(() => out.includes("listening on") || (proc.exitCode !== null ? Promise.reject(new Error(`${name} exited: ${err}`)) : undefined), 15_000, `${name} listening`);
  return {
    name,
    pid: proc.pid!,
    proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      await exited;
    },
  };
}
