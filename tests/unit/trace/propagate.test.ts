/** @module tests/unit/trace/propagate — `--propagate`'s pure parts: the cgroup v2 mount, the host verdict (exit 22), the counters line and doctor's line (no root, no kernel). */
import { describe, expect, test } from "bun:test";
import { parseCgroup2Mount } from "../../../src/bpf/features.ts";
import { clientSockets, describePropagation, parseProcNetTcp, requirePropagation } from "../../../src/trace/propagate.ts";
import { propagationLine } from "../../../src/cli/doctor.ts";
import { EXIT_CODES, TracerError } from "../../../src/errors.ts";

/** A hybrid layout: cgroup v1 controllers under a tmpfs, the v2 hierarchy at .../unified (proc(5) mountinfo). */
const HYBRID = [
  "23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw",
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");

describe("cgroup v2 mount", () => {
  test("hybrid layout: the cgroup2 mount under the cgroup tmpfs", () => {
    expect(parseCgroup2Mount(HYBRID)).toBe("/sys/fs/cgroup/unified");
  });
  test("unified layout, with optional fields before the separator", () => {
    expect(parseCgroup2Mount("30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate")).toBe("/sys/fs/cgroup");
  });
  test("cgroup v1 only: none", () => {
    expect(parseCgroup2Mount(HYBRID.split("\n").slice(0, 4).join("\n"))).toBeUndefined();
    expect(parseCgroup2Mount("")).toBeUndefined();
  });
  test("the hierarchy's root wins over a bind mount of a sub-cgroup; octal escapes are undone", () => {
    const text = ["50 23 0:38 /system.slice /mnt/sub rw - cgroup2 cgroup2 rw", "51 23 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw"].join("\n");
    expect(parseCgroup2Mount(text)).toBe("/mnt/cg two");
    expect(parseCgroup2Mount(text.split("\n")[0]!)).toBe("/mnt/sub");
  });
  test("garbage lines are skipped", () => {
    expect(parseCgroup2Mount("nonsense\n - cgroup2\n1 2 - cgroup2 x y\n" + HYBRID)).toBe("/sys/fs/cgroup/unified");
  });
});

describe("host verdict", () => {
  test("supported: the cgroup to attach to", () => {
    expect(requirePropagation({ ok: true, detail: "fine", cgroupPath: "/sys/fs/cgroup" }).cgroupPath).toBe("/sys/fs/cgroup");
  });
  test("unsupported: kernel_unsupported (exit 22) naming the reason, with the fix and the way out", () => {
    let err: unknown;
    try {
      requirePropagation({ ok: false, detail: "no cgroup v2 hierarchy is mounted", fix: "mount -t cgroup2 none /sys/fs/cgroup/unified" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracerError);
    const t = err as TracerError;
    expect(t.code).toBe("kernel_unsupported");
    expect(EXIT_CODES[t.code]).toBe(22);
    expect(t.message).toContain("no cgroup v2 hierarchy is mounted");
    expect(t.hint).toContain("mount -t cgroup2");
    expect(t.hint).toContain("without --propagate");
  });
  test("no privileges to probe: permission_denied, not a kernel verdict", () => {
    expect(() => requirePropagation({ ok: false, detail: "sock_ops programs cannot be loaded (EPERM: operation not permitted)" })).toThrow(
      expect.objectContaining({ code: "permission_denied" }) as unknown as Error,
    );
  });
});

describe("lines", () => {
  test("counters at the end of a session", () => {
    expect(describePropagation({ inserted: 4, existing: 1, noSpan: 0, unscanned: 1, notHttp1: 0, failed: 0, sockets: 1 })).toBe(
      "propagation: 4 traceparent headers inserted, 1 request kept the application's own, 1 with a header block too long to search (left alone); 1 connection watched",
    );
    expect(describePropagation({ inserted: 1, existing: 0, noSpan: 2, unscanned: 0, notHttp1: 3, failed: 1, sockets: 2 })).toBe(
      "propagation: 1 traceparent header inserted, 0 requests kept the application's own, 3 not HTTP/1 (left alone), 2 without a client span, 1 failed; 2 connections watched",
    );
  });
  test("doctor's propagation line", () => {
    expect(propagationLine({ socketHttp1: { ok: true, detail: "sock_ops on cgroup v2 /sys/fs/cgroup/unified, sk_msg with bpf_msg_push_data" }, probeWriteUser: { allowed: false, detail: "lockdown integrity" } })).toBe(
      "propagation: socket-layer HTTP/1 (sock_ops+sk_msg) yes (sock_ops on cgroup v2 /sys/fs/cgroup/unified, sk_msg with bpf_msg_push_data); bpf_probe_write_user: refused (lockdown integrity)",
    );
    expect(propagationLine({ socketHttp1: { ok: false, detail: "no cgroup v2 hierarchy is mounted", fix: "mount it" }, probeWriteUser: { allowed: true, detail: "lockdown none" } })).toBe(
      "propagation: socket-layer HTTP/1 (sock_ops+sk_msg) no (no cgroup v2 hierarchy is mounted; fix: mount it); bpf_probe_write_user: allowed (lockdown none)",
    );
  });
});

/** /proc/PID/net/tcp (proc(5)): a listener on 8080, a connection it accepted, two client connections, one socket of another process. */
const TCP = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0",
  "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1",
  "   2: 0100007F:D432 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1",
  "   3: 0100007F:D433 0100007F:0050 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000",
  "   4: 0100007F:D434 0100007F:0051 01 00000000:00000000 00:00000000 00000000     0        0 1005 1 0000000000000000 20 4 30 10 -1",
  "   5: 0100007F:D435 0100007F:0051 01 00000000:00000000 00:00000000 00000000     0        0 2000 1 0000000000000000 20 4 30 10 -1",
].join("\n");
const TCP6 = [
  "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0000000000000000FFFF00000100007F:D436 0000000000000000FFFF00000100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 1006 1 0000000000000000 20 4 30 10 -1",
].join("\n");

describe("connections already open", () => {
  test("/proc/net/tcp and tcp6 lines: local port, state, inode (TIME_WAIT entries without an inode skipped)", () => {
    expect(parseProcNetTcp(TCP)).toEqual([
      { localPort: 8080, state: 10, inode: 1001 },
      { localPort: 8080, state: 1, inode: 1002 },
      { localPort: 0xd432, state: 1, inode: 1003 },
      { localPort: 0xd434, state: 1, inode: 1005 },
      { localPort: 0xd435, state: 1, inode: 2000 },
    ]);
    expect(parseProcNetTcp(TCP6)).toEqual([{ localPort: 0xd436, state: 1, inode: 1006 }]);
    expect(parseProcNetTcp("garbage\n 1: x y z\n")).toEqual([]);
  });
  test("the process's client connections: established, its own, not on a port it listens on", () => {
    const fds = new Map([
      [1001, 3],
      [1002, 7],
      [1003, 8],
      [1005, 9],
      [1006, 10],
    ]);
    expect(clientSockets(fds, [...parseProcNetTcp(TCP), ...parseProcNetTcp(TCP6)])).toEqual([
      { fd: 8, inode: 1003 },
      { fd: 9, inode: 1005 },
      { fd: 10, inode: 1006 },
    ]);
    expect(clientSockets(new Map(), parseProcNetTcp(TCP))).toEqual([]);
  });
});
