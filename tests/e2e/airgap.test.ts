/**
 * @module tests/e2e/airgap — tracing on a machine that has nothing but the one file an operator
 * copied: `beetrace run --out /cap.cbor -- /sample` inside a chroot holding only dist/beetrace,
 * the glibc libraries `ldd` names, /bin/sh (which `run` uses to start the program stopped) and a
 * static Go sample; /proc, /sys, /dev bind-mounted and an empty tmpfs /tmp mounted noexec, so the
 * embedded libbpf bundle can only be loaded from a memfd.
 *
 * Everything is mounted inside `unshare --mount` (private propagation): the kernel tears the mounts
 * down with the namespace, so nothing leaks onto the host even if the test dies. The NETWORK
 * namespace is shared on purpose: the test drives HTTP requests at the sample from outside.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DIST_BEETRACE, buildSample, e2eSkipReason, httpGet, listeningAddress, readSpans, waitFor, type Exit } from "./harness.ts";
import { filesUnder, isStaticExecutable, makeRoot, mountsUnder, removeTree } from "./mounts.ts";

const haveUnshare = spawnSync("unshare", ["--version"]).status === 0;
// The chroot test runs the executable itself (there is no bun inside the chroot).
const reason = e2eSkipReason() ?? (!haveUnshare ? "needs unshare (util-linux)" : !existsSync(DIST_BEETRACE) && process.env.CI !== "true" ? "dist/beetrace is not built (run 'bun build.ts')" : undefined);
if (reason) console.warn(`skip air-gapped tracing: ${reason}`);

const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-airgap-"));
afterAll(() => removeTree(work));

/** Lines the wrapper prints (prefixed so they cannot be confused with the tracer's or the sample's output). */
const MARK = "@@airgap ";

/**
 * Mounts the chroot's file systems in a private mount namespace, runs `argv` chrooted with an
 * empty environment, and afterwards (still inside the namespace, where the tmpfs exists) reports
 * what /tmp holds and the exit status.
 */
const WRAPPER = [
  "set -e",
  'R="$1"; shift',
  'mount -t proc proc "$R/proc"',
  'mount --rbind /sys "$R/sys"', // recursive: brings tracefs/debugfs under /sys/kernel along
  'mount --rbind /dev "$R/dev"',
  'mount -t tmpfs -o mode=1777,size=16m,noexec,nosuid,nodev tmpfs "$R/tmp"',
  `echo "${MARK}tmp-mount $(grep " $R/tmp " /proc/self/mountinfo)"`,
  "set +e",
  '/usr/bin/env -i HOME=/ TMPDIR=/tmp PATH=/ /usr/sbin/chroot "$R" "$@"',
  "rc=$?",
  `echo "${MARK}tmp-after [$(ls -A "$R/tmp" | tr '\\n' ' ')]"`,
  `echo "${MARK}rc $rc"`,
  'exit "$rc"',
].join("\n");

interface Jail {
  pid: number;
  out: () => string;
  exited: Promise<Exit>;
  /** SIGKILL everything the jail started (its own process group). */
  kill: () => void;
}

function startJail(root: string, argv: string[]): Jail {
  // detached: a process group of its own, so cleanup can kill the tracer and the sample with it.
  const p = spawn("unshare", ["--mount", "--propagation", "private", "sh", "-c", WRAPPER, "sh", root, ...argv], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  p.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  let done = false;
  const exited = new Promise<Exit>((r) => p.on("exit", (code, signal) => ((done = true), r({ code, signal }))));
  return {
    pid: p.pid!,
    out: () => out,
    exited,
    kill: () => {
      if (done) return;
      try {
        process.kill(-p.pid!, "SIGKILL");
      } catch {
        /* already gone */
      }
    },
  };
}

/** `p`, or a rejection naming `what` after `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Library files of the BPF stack, which the executable must carry itself. */
const BPF_LIBS = /(^|\/)lib(bpf|elf|z)[.-]/;

describe.skipIf(reason !== undefined)(`air-gapped tracing${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("run --out inside a chroot with only beetrace, glibc, /bin/sh and a static Go sample captures exactly the requests sent", async () => {
    const sample = await buildSample({ mode: "default" }); // CGO_ENABLED=0 (harness)
    expect(isStaticExecutable(sample)).toBe(true);
    const root = makeRoot(work, { [DIST_BEETRACE]: "/beetrace", [sample]: "/sample", "/bin/sh": "/bin/sh" });
    let jail: Jail | undefined;
    try {
      const before = filesUnder(root).sort();
      expect(before.filter((f) => BPF_LIBS.test(f))).toEqual([]);
      // Only the three files and glibc (libc, libm, libdl, libpthread, the loader).
      expect(before.filter((f) => !["beetrace", "sample", "bin/sh"].includes(f)).every((f) => /^(lib|lib64|usr\/lib)\/.*(ld-linux|lib(c|m|dl|pthread|rt))[.-]/.test(f))).toBe(true);

      jail = startJail(root, ["/beetrace", "run", "--out", "/cap.cbor", "--duration", "120s", "--", "/sample", "-addr", "127.0.0.1:0"]);
      const j = jail;
      let exit: Exit | undefined;
      void j.exited.then((e) => (exit = e));
      const failed = () => (exit ? Promise.reject(new Error(`jail exited (${exit.code ?? exit.signal}):\n${j.out()}`)) : undefined);
      const target = await waitFor(() => {
        const m = /beetrace: tracing pid (\d+) /.exec(j.out());
        return m ? Number(m[1]) : failed();
      }, 60_000, "the tracer's 'tracing pid' line");
      const addr = await waitFor(() => listeningAddress(j.out()) ?? failed(), 30_000, "the sample's 'listening on' line");
      expect(j.out()).toMatch(new RegExp(`${MARK}tmp-mount .*\\bnoexec\\b`));

      // `run` starts the program as its own child, so the target's parent is the tracer.
      const stat = readFileSync(`/proc/${target}/stat`, "utf8");
      const tracerPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      expect(readFileSync(`/proc/${tracerPid}/comm`, "utf8").trim()).toBe("beetrace");
      // libbpf is mapped from the memfd (memfd_create names show as /memfd:NAME in maps, proc(5)), nothing from a file.
      const maps = readFileSync(`/proc/${tracerPid}/maps`, "utf8");
      expect(maps).toContain("/memfd:beetrace-libbpf");
      expect(maps.split("\n").filter((l) => BPF_LIBS.test(l.split(/\s+/)[5] ?? ""))).toEqual([]);

      const N = 7;
      const sent: number[] = [];
      for (let i = 0; i < N; i++) {
        const x = await httpGet(addr.port, `/items/${i}`);
        expect(x.status).toBe(200);
        sent.push(x.localPort);
      }
      process.kill(tracerPid, "SIGINT");
      const e = await within(j.exited, 60_000, "the tracer to exit after SIGINT");
      const out = j.out();
      expect(e.code).toBe(0);
      expect(out).toContain(`${MARK}rc 0`);
      expect(out).toMatch(/interrupted \(SIGINT\); wrote 7 spans to \/cap\.cbor/);
      expect(out).toContain(`${MARK}tmp-after []`);
      expect(out).not.toContain("error:");

      const cap = readSpans(join(root, "cap.cbor"));
      expect(cap.contents.truncated).toBe(false);
      expect(cap.end?.reason).toBe("interrupted (SIGINT)");
      expect(cap.contents.header.target.exe).toBe("/sample");
      expect(cap.spans.map((s) => s.attributes["url.path"]).sort()).toEqual(sent.map((_, i) => `/items/${i}`).sort());
      expect(cap.spans.map((s) => Number(s.attributes["network.peer.port"])).sort()).toEqual([...sent].sort());
      expect(cap.spans.every((s) => s.kind === "server")).toBe(true);

      // After the run: still no BPF libraries anywhere in the root, and no mount of ours left on the host.
      const after = filesUnder(root).sort();
      expect(after.filter((f) => BPF_LIBS.test(f))).toEqual([]);
      expect(mountsUnder(root)).toEqual([]);
      expect(statSync(join(root, "tmp")).isDirectory()).toBe(true);
    } finally {
      jail?.kill();
      if (jail) await jail.exited;
      removeTree(root);
    }
  }, 180_000);

  test("without /bin/sh, run fails with a one-line error and a hint, not a crash", async () => {
    const sample = await buildSample({ mode: "default" });
    const root = makeRoot(work, { [DIST_BEETRACE]: "/beetrace", [sample]: "/sample" });
    let jail: Jail | undefined;
    try {
      jail = startJail(root, ["/beetrace", "run", "--out", "/cap.cbor", "--", "/sample"]);
      const e = await within(jail.exited, 60_000, "the tracer to fail");
      const out = jail.out();
      expect(e.code).toBe(5); // io_error (src/errors.ts EXIT_CODES)
      expect(out).toContain("error: could not start /sample");
      expect(out).toMatch(/^hint: .*\/bin\/sh/m);
      expect(out).not.toContain("    at ");
      expect(out).toContain(`${MARK}tmp-after []`);
      expect(mountsUnder(root)).toEqual([]);
    } finally {
      jail?.kill();
      removeTree(root);
    }
  }, 120_000);
});
