/**
 * @module bpf/verifier-log — what a kernel verifier log says about a program it refused, in the
 * operator's terms. The common refusal on an older kernel is a BPF helper it does not have; the
 * log then names only the helper's number, and "the verifier rejected the probe" would read like
 * a beetrace bug.
 */

/**
 * Helpers our programs call, by id (include/uapi/linux/bpf.h, enum bpf_func_id), with the Linux
 * release that added them (the kernel's git history of that enum).
 */
const HELPERS: Readonly<Record<number, { name: string; since: string }>> = {
  112: { name: "bpf_probe_read_user", since: "5.5" },
  113: { name: "bpf_probe_read_kernel", since: "5.5" },
  114: { name: "bpf_probe_read_user_str", since: "5.5" },
  125: { name: "bpf_ktime_get_boot_ns", since: "5.8" },
  130: { name: "bpf_ringbuf_output", since: "5.8" },
  131: { name: "bpf_ringbuf_reserve", since: "5.8" },
  132: { name: "bpf_ringbuf_submit", since: "5.8" },
  133: { name: "bpf_ringbuf_discard", since: "5.8" },
  134: { name: "bpf_ringbuf_query", since: "5.8" },
  174: { name: "bpf_get_attach_cookie", since: "5.15" },
  181: { name: "bpf_loop", since: "5.17" },
};

export interface MissingHelper {
  /** bpf_func_id */
  id: number;
  /** its name ("bpf_loop"), or "helper #id" when we do not know it */
  name: string;
  /** the Linux release that added it, when known */
  since?: string;
}

/**
 * The helper a verifier log refuses, if that is why the program was refused. Kernels print
 * "invalid func unknown#181" for an id they do not know at all, "unknown func bpf_loop#181" for
 * one this program type may not call, and since 6.x "program of this type cannot use helper
 * bpf_loop#181" (kernel/bpf/verifier.c, check_helper_call).
 */
export function missingHelper(log: readonly string[]): MissingHelper | undefined {
  for (const line of log) {
    const m = /(?:invalid func|unknown func|cannot use helper) ([A-Za-z0-9_]+)#(\d+)/.exec(line);
    if (!m) continue;
    const id = Number(m[2]);
    const known = HELPERS[id];
    const name = known?.name ?? (m[1] !== "unknown" ? m[1]! : `helper #${id}`);
    return known ? { id, name, since: known.since } : { id, name };
  }
  return undefined;
}
