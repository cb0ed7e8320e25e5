/**
 * @module trace/process-maps — BPF maps shared by every trace session of one beetrace process.
 *
 * Within a session, probe objects reuse the first object's maps (session.ts SHARED_MAPS). A
 * few maps must also be shared ACROSS the sessions of one beetrace that traces several
 * processes (`attach --pid A --pid B`, `attach --exe` with several processes): a client span
 * that process A has in flight on a connection is found by process B's server probe
 * (bee_conn_spans, bpf/include/conn_ctx.bpf.h: live connection-matched joins).
 *
 * The first session to load an object declaring such a map hands its fd here; the registry
 * keeps its own duplicate, so the map lives on when that session ends, and later sessions
 * (a restarted service included) reuse it. The command that owns the registry disposes of it
 * once every session has ended. Nothing is pinned in bpffs: the maps die with beetrace.
 */
import { closeFd, dupFd, readErrno } from "../bpf/libc.ts";
import { errnoError } from "../bpf/call.ts";

/** Maps shared by all sessions of the process (each also in session.ts SHARED_MAPS). */
export const PROCESS_MAPS: readonly string[] = ["bee_conn_spans"];

export class ProcessMaps implements Disposable {
  readonly #fds = new Map<string, number>();
  #disposed = false;

  /** Whether `name` is shared across sessions. */
  static shares(name: string): boolean {
    return PROCESS_MAPS.includes(name);
  }

  /** The fd of a map an earlier session made, to reuse before load. */
  get(name: string): number | undefined {
    return this.#fds.get(name);
  }

  /** Keep map `name` (an object's fd, after load) for later sessions; a no-op when one is kept already. */
  adopt(name: string, fd: number): void {
    if (this.#disposed || this.#fds.has(name)) return;
    const own = dupFd(fd);
    if (own < 0) throw errnoError(`keep map ${name} for the other traced processes (dup)`, readErrno());
    this.#fds.set(name, own);
  }

  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const fd of this.#fds.values()) closeFd(fd);
    this.#fds.clear();
  }
}
