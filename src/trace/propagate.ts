/**
 * @module trace/propagate — `--propagate`: trace context out. A W3C `traceparent` header goes
 * into the plain HTTP/1 requests the traced process sends, inserted at the socket layer by
 * bpf/propagate.bpf.c (sock_ops on the cgroup v2 root picks the process's TCP client sockets,
 * sk_msg on their sockhash rewrites the first message of each request), so a downstream
 * service traced by another beetrace, or instrumented with an OpenTelemetry SDK, continues
 * the trace. The header names the client span the net/http client probe put in
 * bee_conn_spans (bpf/include/conn_ctx.bpf.h) for that connection; the session hands over that
 * map so both objects see the same entries. An application's own traceparent is never
 * replaced; HTTP/2 (h2c, gRPC) and TLS connections are not rewritten.
 *
 * Everything is owned by one `Propagator` per traced process: the cgroup link and the
 * sockhash attachment are released on dispose (the sockhash, freed with the object, puts its
 * sockets back to plain TCP); nothing is pinned.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { TracerError } from "../errors.ts";
import { log } from "../log.ts";
import { BpfObject } from "../bpf/object.ts";
import { addProcessSockets, attachCgroup, attachToMap, BPF_SK_MSG_VERDICT, LinkSet } from "../bpf/link.ts";
import { bpfObjectPath } from "../bpf/embedded.ts";
import { socketPropagationSupport, type SocketPropagationSupport } from "../bpf/features.ts";
import type { CounterName, MapName, RodataName } from "../probes/propagate/propagate.gen.ts";

/** bpf/propagate.bpf.c: its programs, maps, rodata and .bss counters. */
export const PROPAGATE_OBJECT = {
  name: "propagate",
  sockops: "propagate_sockops",
  msg: "propagate_msg",
  sockhash: "bee_prop_socks",
  connSpans: "bee_conn_spans",
  tgid: "bee_prop_tgid",
} as const satisfies { sockhash: MapName; connSpans: MapName; tgid: RodataName } & Record<string, string>;

/** The .bss counters of bpf/propagate.bpf.c, by what they count. */
export const PROPAGATE_COUNTERS = {
  inserted: "prop_inserted",
  existing: "prop_existing",
  noSpan: "prop_no_span",
  unscanned: "prop_unscanned",
  notHttp1: "prop_not_http1",
  failed: "prop_failed",
  sockets: "prop_sockets",
} as const satisfies Record<string, CounterName>;

export type PropagationCounts = Record<keyof typeof PROPAGATE_COUNTERS, number>;

/** One line for the session's end: what happened to the requests the process sent. */
export function describePropagation(c: PropagationCounts): string {
  const parts = [
    `${c.inserted} traceparent header${c.inserted === 1 ? "" : "s"} inserted`,
    `${c.existing} request${c.existing === 1 ? "" : "s"} kept the application's own`,
  ];
  if (c.unscanned > 0) parts.push(`${c.unscanned} with a header block too long to search (left alone)`);
  if (c.notHttp1 > 0) parts.push(`${c.notHttp1} not HTTP/1 (left alone)`);
  if (c.noSpan > 0) parts.push(`${c.noSpan} without a client span`);
  if (c.failed > 0) parts.push(`${c.failed} failed`);
  return `propagation: ${parts.join(", ")}; ${c.sockets} connection${c.sockets === 1 ? "" : "s"} watched`;
}

/**
 * The host supports socket-layer propagation, or the TracerError `--propagate` fails with
 * (kernel_unsupported, exit 22) naming why. Called before the target is touched.
 */
export function requirePropagation(support: SocketPropagationSupport = socketPropagationSupport()): SocketPropagationSupport & { cgroupPath: string } {
  if (support.ok && support.cgroupPath !== undefined) return { ...support, cgroupPath: support.cgroupPath };
  const code = /permission|EPERM|EACCES/.test(support.detail) ? "permission_denied" : "kernel_unsupported";
  throw new TracerError(code, `--propagate: this host supports no way to send trace context: socket-layer HTTP/1 (sock_ops+sk_msg): ${support.detail}`, {
    hint: support.fix ? `${support.fix}; or trace without --propagate` : "trace without --propagate ('beetrace doctor' shows what is missing)",
  });
}

/** One socket line of /proc/PID/net/tcp or tcp6 (proc(5)): its local port, TCP state and inode. */
export interface ProcTcpSocket {
  localPort: number;
  /** include/net/tcp_states.h: 1 ESTABLISHED, 10 LISTEN */
  state: number;
  inode: number;
}

const TCP_ESTABLISHED = 1;
const TCP_LISTEN = 10;

/** The sockets of /proc/net/tcp{,6} text ("sl local_address rem_address st ... uid timeout inode"). */
export function parseProcNetTcp(text: string): ProcTcpSocket[] {
  const out: ProcTcpSocket[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0]!)) continue;
    const port = /:([0-9A-Fa-f]{4})$/.exec(f[1]!)?.[1];
    const state = /^[0-9A-Fa-f]{2}$/.test(f[3]!) ? parseInt(f[3]!, 16) : undefined;
    const inode = /^\d+$/.test(f[9]!) ? Number(f[9]) : undefined;
    if (port === undefined || state === undefined || inode === undefined || inode === 0) continue;
    out.push({ localPort: parseInt(port, 16), state, inode });
  }
  return out;
}

/**
 * The process's TCP client connections already open: established sockets among its fds
 * (`fdInodes`: socket inode → fd) whose local port is none of its listening ports (a connection
 * a server accepted has the listening port as its local port).
 */
export function clientSockets(fdInodes: ReadonlyMap<number, number>, sockets: readonly ProcTcpSocket[]): { fd: number; inode: number }[] {
  const listening = new Set(sockets.filter((s) => s.state === TCP_LISTEN && fdInodes.has(s.inode)).map((s) => s.localPort));
  const out: { fd: number; inode: number }[] = [];
  const seen = new Set<number>();
  for (const s of sockets) {
    if (s.state !== TCP_ESTABLISHED || listening.has(s.localPort) || seen.has(s.inode)) continue;
    const fd = fdInodes.get(s.inode);
    if (fd === undefined) continue;
    seen.add(s.inode);
    out.push({ fd, inode: s.inode });
  }
  return out;
}

/** socket inode → fd of process `pid` (/proc/PID/fd links read "socket:[INODE]"). */
function socketInodes(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${n}`));
      if (m) out.set(Number(m[1]), Number(n));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** Keys user space gives sockets it adds: the inode with bit 62 set, apart from BPF's socket cookies (small counters). */
const ADOPTED_KEY_BIT = 1n << 62n;

export interface PropagatorOptions {
  /** the traced process: only its sockets are rewritten */
  tgid: number;
  /** fd of the session's bee_conn_spans map (the client probe's); none: the object's own (tests) */
  connSpansFd?: number;
  /** cgroup v2 directory to attach sock_ops to (default: the mount found by the host check) */
  cgroupPath?: string;
  /** the object's bytes (default: the built/embedded propagate object) */
  objectBytes?: Uint8Array;
}

export class Propagator implements Disposable {
  readonly #object: BpfObject;
  readonly #links = new LinkSet();
  #disposed = false;
  /** connections already open at start that were added to the sockhash */
  #adopted = 0;

  private constructor(
    object: BpfObject,
    readonly cgroupPath: string,
  ) {
    this.#object = object;
  }

  /** Load bpf/propagate.bpf.c for `tgid` and attach it: sk_msg first, so no socket enters the sockhash before its program. */
  static start(o: PropagatorOptions): Propagator {
    const cgroupPath = o.cgroupPath ?? requirePropagation().cgroupPath;
    const bytes = o.objectBytes ?? new Uint8Array(readFileSync(bpfObjectPath(PROPAGATE_OBJECT.name)));
    const object = BpfObject.open(bytes, PROPAGATE_OBJECT.name);
    const p = new Propagator(object, cgroupPath);
    if (o.connSpansFd === undefined && o.objectBytes === undefined) {
      log.warn("--propagate: no net/http client probe is attached to this process, so no request has a span to send");
    }
    try {
      object.setConst(PROPAGATE_OBJECT.tgid, o.tgid);
      if (o.connSpansFd !== undefined) object.reuseMap(PROPAGATE_OBJECT.connSpans, o.connSpansFd);
      object.load();
      p.#links.add(attachToMap(object.program(PROPAGATE_OBJECT.msg), object.map(PROPAGATE_OBJECT.sockhash), BPF_SK_MSG_VERDICT));
      p.#links.add(attachCgroup(object.program(PROPAGATE_OBJECT.sockops), cgroupPath));
      p.#adoptOpenConnections(o.tgid);
    } catch (e) {
      p[Symbol.dispose]();
      throw e instanceof TracerError ? e.withContext("--propagate") : e;
    }
    log.verbose(`propagation: traceparent into HTTP/1 requests of pid ${o.tgid} (sock_ops on ${cgroupPath}, sk_msg on its sockets)`);
    return p;
  }

  /**
   * Connections the process opened before the sock_ops program was attached (a keep-alive pool
   * of a service traced with `attach`) go into the sockhash too. After the cgroup link, so a
   * connection made meanwhile is in one of the two ways (or both: the second is refused).
   */
  #adoptOpenConnections(tgid: number): void {
    const fds = socketInodes(tgid);
    const text = ["tcp", "tcp6"].map((f) => {
      try {
        return readFileSync(`/proc/${tgid}/net/${f}`, "utf8");
      } catch {
        return "";
      }
    });
    const clients = clientSockets(fds, text.flatMap(parseProcNetTcp));
    const r = addProcessSockets(
      this.#object.map(PROPAGATE_OBJECT.sockhash),
      tgid,
      clients.map((c) => ({ fd: c.fd, key: ADOPTED_KEY_BIT | BigInt(c.inode) })),
    );
    this.#adopted = r.added;
    if (clients.length > 0) log.verbose(`propagation: ${r.added} of the ${clients.length} client connections pid ${tgid} already had are watched too`);
    for (const why of r.skipped) log.debug(`propagation: an open connection of pid ${tgid} is not watched: ${why}`);
  }

  /** The object (tests write bee_conn_spans through it when no client probe shares the map). */
  get object(): BpfObject {
    return this.#object;
  }

  counts(): PropagationCounts {
    const out = {} as PropagationCounts;
    for (const [k, name] of Object.entries(PROPAGATE_COUNTERS) as [keyof PropagationCounts, string][]) out[k] = Number(this.#object.readBss(name));
    out.sockets += this.#adopted;
    return out;
  }

  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    let first: unknown;
    try {
      if (this.#object.loaded) log.verbose(describePropagation(this.counts()));
    } catch {
      /* counters are informative only */
    }
    // The cgroup link first (no new sockets), then the sockhash program, then the object: its
    // sockhash is freed and every socket in it goes back to plain TCP.
    try {
      this.#links[Symbol.dispose]();
    } catch (e) {
      first = e;
    }
    try {
      this.#object[Symbol.dispose]();
    } catch (e) {
      first ??= e;
    }
    if (first !== undefined) throw first;
  }
}
