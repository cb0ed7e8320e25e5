/** @module tests/e2e/bpf-libbpf-load — which libbpf gets loaded: memfd bundle, bundle path, system. */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { SOURCE_LAYOUT } from "../../src/bpf/embedded.ts";

// Each case runs in a fresh process: the libbpf choice is made once per process.
const LIBBPF_TS = join(import.meta.dir, "..", "..", "src", "bpf", "libbpf.ts");
const LOG_TS = join(import.meta.dir, "..", "..", "src", "log.ts");
const BUILT_BUNDLE = join(import.meta.dir, "..", "..", SOURCE_LAYOUT.libbpfBundle);

/** The system libbpf file, standing in for the embedded bundle (same ABI: both are libbpf 1.x). */
function systemLibbpf(): string | undefined {
  const r = spawnSync("sh", ["-c", "ldconfig -p | grep -m1 'libbpf.so.1 ' | sed 's/.*=> //'"], { encoding: "utf8" });
  const p = r.stdout.trim();
  return p && existsSync(p) ? realpathSync(p) : undefined;
}

/** undefined: do not call configureLibbpf (the default: embedded.ts's bundle when built). */
function load(bundlePath: string | null | undefined): { source: string; path: string; version: string; memfds: number; log: string[] } {
  const script = `
    import { configureLibbpf, libbpf } from ${JSON.stringify(LIBBPF_TS)};
    import { setLogLevel, setLogSink } from ${JSON.stringify(LOG_TS)};
    import { readdirSync, readlinkSync } from "node:fs";
    const log = [];
    setLogLevel("debug");
    setLogSink((l) => log.push(l));
    ${bundlePath === undefined ? "" : `configureLibbpf({ bundlePath: ${JSON.stringify(bundlePath)} });`}
    const l = libbpf();
    const memfds = readdirSync("/proc/self/fd").filter((fd) => { try { return readlinkSync("/proc/self/fd/" + fd).startsWith("/memfd:"); } catch { return false; } }).length;
    console.log(JSON.stringify({ source: l.source, path: l.path, version: l.version, memfds, log }));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const lib = systemLibbpf();

describe.skipIf(lib === undefined)(`libbpf loading${lib === undefined ? " — skipped: no system libbpf.so.1 (Debian package libbpf1)" : ""}`, () => {
  test("a bundle is loaded through a memfd, and the memfd is not left open", () => {
    const r = load(lib!);
    expect(r.source).toBe("memfd");
    expect(r.path).toMatch(/^\/proc\/self\/fd\/\d+$/);
    expect(r.version).toMatch(/^1\.\d+$/);
    expect(r.memfds).toBe(0);
    expect(r.log).toContain(`debug: libbpf ${r.version} loaded from memfd (${r.path})`);
  });

  test("without a bundle, the system libbpf is used and the choice is logged", () => {
    const r = load(null);
    expect(r.source).toBe("system");
    expect(r.log).toContain(`debug: libbpf ${r.version} loaded from system (libbpf.so.1)`);
  });

  test("an unreadable bundle falls back (memfd, then its path) to the system libbpf, saying why", () => {
    const r = load("/nonexistent/libbpf-bundle.so");
    expect(r.source).toBe("system");
    expect(r.log.some((l) => l.startsWith("debug: libbpf via memfd failed: ") && l.includes("ENOENT"))).toBe(true);
    expect(r.log.some((l) => l.startsWith("debug: libbpf via bundle-path failed: "))).toBe(true);
  });

  test("by default the bundle build.ts made is used (through a memfd), else the system libbpf", () => {
    const r = load(undefined);
    if (existsSync(BUILT_BUNDLE)) {
      expect(r.source).toBe("memfd");
    } else {
      expect(r.source).toBe("system");
      expect(r.log.some((l) => l.startsWith("debug: no libbpf bundle: the libbpf bundle is not built"))).toBe(true);
    }
  });
});
