/** @module tests/e2e/bpf-deno — the same src/bpf code running under Deno (when a deno executable exists). */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildRingTestObject, buildTarget, CACHE, fileOffsetOf, skipReason } from "./bpf-harness.ts";

// The same src/bpf code under Deno (ffi-deno.ts instead of ffi-bun.ts). Runs when a `deno`
// executable is on PATH or at node_modules/.bin/deno; Deno is not a dependency of the project.
const ROOT = join(import.meta.dir, "..", "..");
function findDeno(): string | undefined {
  const local = join(ROOT, "node_modules", ".bin", "deno");
  if (existsSync(local)) return local;
  const r = spawnSync("sh", ["-c", "command -v deno"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const deno = findDeno();
const reason = skipReason() ?? (deno === undefined ? "no deno executable (install the npm package 'deno' to run this)" : undefined);

const SCRIPT = `
import { BpfObject } from "${join(ROOT, "src/bpf/object.ts")}";
import { attachUprobe } from "${join(ROOT, "src/bpf/link.ts")}";
import { RingBufferReader } from "${join(ROOT, "src/bpf/ringbuf.ts")}";
import { openHandleCount } from "${join(ROOT, "src/bpf/handles.ts")}";
import { sampleClocks } from "${join(ROOT, "src/bpf/clock.ts")}";
import { readFileSync } from "node:fs";
const [objPath, badPath, target, off] = Deno.args;
const out = {};
const bytes = new Uint8Array(readFileSync(objPath));
{
  using obj = BpfObject.open(bytes, "deno_test");
  obj.setConst("tag", 99n);
  obj.load();
  const p = new Deno.Command(target, { args: ["23"], stdin: "piped", stdout: "null" }).spawn();
  using _l = attachUprobe(obj.program("on_call"), { binaryPath: target, fileOffset: Number(off), pid: p.pid });
  using rb = new RingBufferReader(obj.map("events"));
  const w = p.stdin.getWriter(); await w.write(new Uint8Array([103])); await w.close();
  await p.status;
  const tags = [];
  out.records = rb.drain((v, o) => tags.push(Number(v.getBigUint64(o + 16, true))));
  out.tags = [...new Set(tags)];
  out.hits = Number(obj.readBss("hits"));
}
try { using o = BpfObject.open(new Uint8Array(readFileSync(badPath)), "bad"); o.load(); } catch (e) { out.bad = e.code; }
out.clockOk = sampleClocks().uncertaintyNs < 1000000n;
out.open = openHandleCount();
console.log(JSON.stringify(out));
`;

describe.skipIf(reason !== undefined)(`src/bpf under Deno${reason ? ` — skipped: ${reason}` : ""}`, () => {
  test("load, attach, drain 23 records, verifier error and clean dispose work the same", () => {
    buildRingTestObject({ bad: true });
    buildRingTestObject();
    const target = buildTarget();
    mkdirSync(CACHE, { recursive: true });
    const script = join(CACHE, "deno-check.ts");
    writeFileSync(script, SCRIPT);
    const r = spawnSync(
      deno!,
      ["run", "--allow-ffi", "--allow-read", "--allow-run", "--allow-env", "--allow-sys", script,
        join(CACHE, "ring-test.bpf.o"), join(CACHE, "ring-test-bad.bpf.o"), target, String(fileOffsetOf(target, "bt_probe_me"))],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ records: 23, tags: [99], hits: 23, bad: "verifier_rejected", clockOk: true, open: 0 });
  });
});
