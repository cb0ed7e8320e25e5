/**
 * @module tests/e2e/diskfull — the capture file's disk fills up while tracing: beetrace must stop
 * with exit code 30 (output_failed) and one `error:` line naming the file and the problem, keep
 * every complete record readable, and detach cleanly: the service keeps serving and none of our
 * uprobes, links or programs stay in the kernel.
 *
 * The "disk" is a 64 KiB tmpfs mounted on a temp directory; it is unmounted in `finally` and again
 * in afterAll, so a failing test leaves no mount behind. Needs root and bpftool.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attachmentsOf, bpfState, buildSample, e2eSkipReason, httpGet, killAll, leftovers, readSpans, runTracer, startSample, tracefsUprobeEvents, waitFor, type TracerRun } from "./harness.ts";
import { mountsUnder, removeTree, unmountAll } from "./mounts.ts";

const reason = e2eSkipReason(["bpftool", "mount", "umount"]);
const work = mkdtempSync(join(tmpdir(), "beetrace-e2e-diskfull-"));
afterAll(() => {
  killAll();
  removeTree(work); // unmounts first; refuses to delete through a mount
});

/** tmpfs sizes are rounded up to whole pages; 64 KiB holds a header and ~100 spans. */
const DISK_BYTES = 64 * 1024;

describe.skipIf(reason !== undefined)(`disk full${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("a full file system stops the trace with exit 30 and one error line; the partial capture reads back; nothing stays attached", async () => {
    const bin = await buildSample({ mode: "default" });
    const sample = await startSample(bin);
    const disk = join(work, "disk");
    mkdirSync(disk);
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${DISK_BYTES},mode=0700`, "tmpfs", disk], { encoding: "utf8" });
    expect(m.stderr).toBe("");
    expect(m.status).toBe(0);
    let tracer: TracerRun | undefined;
    try {
      expect(mountsUnder(disk)).toEqual([disk]);
      const file = join(disk, "cap.cbor");
      const t = runTracer(["attach", "--pid", String(sample.pid), "--out", file]);
      tracer = t;
      const { uprobes } = await t.started();
      const attached = attachmentsOf(bpfState(), t.pid);
      expect(attached.perf.length + attached.multi.reduce((n, x) => n + x.uprobes, 0)).toBe(uprobes);
      const progIds = attached.progIds;
      expect(progIds.size).toBeGreaterThan(0);

      // Long paths make each span bigger, so the disk fills after a few dozen requests. Keep
      // sending until the tracer gives up: the write error surfaces at the next flush, and the
      // session stops on the first span after it.
      let exited = false;
      void t.exited.then(() => (exited = true));
      let sent = 0;
      const pad = "x".repeat(900); // probes truncate long strings (a fixed buffer), so the counter goes first
      await waitFor(
        async () => {
          if (exited) return true;
          for (let i = 0; i < 10; i++) {
            const x = await httpGet(sample.port, `/items/${sent++}-${pad}`);
            expect(x.status).toBe(200);
          }
          return exited;
        },
        60_000,
        "the tracer to stop on the full disk",
      );
      const exit = await t.exit();
      const stderr = t.stderr();
      expect(exit.code).toBe(30); // output_failed (src/errors.ts EXIT_CODES)

      // One error line naming the file and the problem, a hint, no stack trace.
      const errors = stderr.split("\n").filter((l) => l.startsWith("error: "));
      expect(errors.length).toBe(1);
      const line = errors[0]!;
      expect(line).toContain(file);
      expect(line).toMatch(/no space left on device/i);
      expect(stderr).toMatch(/^hint: .*free disk space/m);
      expect(stderr).not.toContain("    at ");
      expect(stderr).not.toContain("BUG");

      // "(N spans in M bytes were written before the error and remain readable)": the file holds exactly that.
      const said = /\((\d+) spans in (\d+) bytes were written before the error/.exec(line);
      expect(said).not.toBeNull();
      const spansSaid = Number(said![1]);
      const bytes = Number(said![2]);
      expect(statSync(file).size).toBe(bytes);
      const cap = readSpans(file);
      expect(cap.spans.length).toBe(spansSaid);
      expect(cap.end).toBeUndefined(); // no room was left for an end record
      expect(cap.spans.length).toBeGreaterThan(10);
      expect(cap.spans.length).toBeLessThan(sent);
      // Every span read back is one of the requests we sent, each at most once.
      const ids = cap.spans.map((s) => Number(/^\/items\/(\d+)-x+$/.exec(String(s.attributes["url.path"]))?.[1] ?? NaN));
      expect(ids.every((id) => Number.isInteger(id) && id < sent)).toBe(true);
      expect(new Set(ids).size).toBe(ids.length);
      // A cut last record is the full disk's doing; it is reported, not an error.
      if (cap.contents.truncated) expect(cap.contents.trailingBytes).toBeGreaterThan(0);
      expect(bytes).toBeGreaterThan(DISK_BYTES - 8 * 1024);

      // The service is unharmed and nothing of ours stays attached.
      expect(sample.alive()).toBe(true);
      expect((await httpGet(sample.port, "/hello")).body).toBe("hello");
      let left = leftovers(bpfState(), progIds, t.pid);
      await waitFor(
        () => {
          left = leftovers(bpfState(), progIds, t.pid);
          return left.progs.length + left.links.length + left.perf.length === 0;
        },
        5_000, // uprobe_multi links drop their program after an RCU grace period (see detach.test.ts)
        "the kernel to drop the tracer's programs",
      ).catch(() => undefined); // the assertion below names what is left
      expect(left).toEqual({ progs: [], links: [], perf: [] });
      expect(tracefsUprobeEvents(bin)).toEqual([]);
    } finally {
      tracer?.signal("SIGKILL"); // only matters when an assertion failed while it still ran
      await sample.stop();
      expect(unmountAll(disk)).toEqual([]);
    }
  }, 120_000);
});
