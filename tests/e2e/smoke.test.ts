/**
 * @module tests/e2e/smoke — the single executable as an operator gets it: dist/beetrace runs, it
 * carries the libbpf bundle, BPF objects and offsets.json, and it works AIR-GAPPED: in a chroot
 * that holds only the executable and the glibc libraries `ldd` names, with /proc, /sys, /dev, an
 * empty tmpfs /tmp, and no network.
 *
 * The chroot is set up inside `unshare --mount --net`: every mount lives in a private mount
 * namespace that the kernel tears down when the process exits, so nothing leaks onto the host
 * even if the test is killed. Before deleting the temp root we still check /proc/self/mountinfo
 * and refuse to delete anything that is a mount point.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PATHS, bpfObjectNames, builtAssets, compileExecutable } from "../../build.ts";
import { BEETRACE_VERSION } from "../../src/version.ts";

const exe = PATHS.executable;
const haveExe = existsSync(exe);
// In CI the build runs before the tests (scripts/test.sh → setup.sh), so a missing binary is a failure there.
const exeSkip = haveExe || process.env.CI === "true" ? undefined : `${exe} is not built (run 'bun build.ts')`;
const assets = builtAssets(bpfObjectNames());
const assetsBuilt = [assets.libbpfBundle, assets.offsetsJson, ...Object.values(assets.bpfObjects)].every((p) => existsSync(p));
const isRoot = process.getuid?.() === 0;
const haveUnshare = spawnSync("unshare", ["--version"]).status === 0;
const chrootSkip = !isRoot ? "needs root (mount namespaces, chroot)" : !haveUnshare ? "unshare (util-linux) is missing" : exeSkip;
for (const [what, why] of [["dist/beetrace checks", exeSkip], ["air-gap chroot", chrootSkip], ["compiled embedded view", assetsBuilt ? undefined : "assets not built (run 'bun build.ts')"]]) {
  if (why) console.warn(`skip ${what}: ${why}`);
}

const work = mkdtempSync(join(tmpdir(), "beetrace-smoke-"));
afterAll(() => removeTree(work));

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

/** Mount points at or under `dir` in our mount namespace. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(dir + "/"));
}

/** rm -rf, but never across a mount point (a leaked bind mount of /dev would be deleted through). */
function removeTree(dir: string): void {
  const mounted = mountsUnder(dir);
  if (mounted.length > 0) {
    for (const m of mounted.reverse()) spawnSync("umount", ["-l", m]);
    if (mountsUnder(dir).length > 0) throw new Error(`not removing ${dir}: still mounted: ${mountsUnder(dir).join(", ")}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Shared libraries `ldd` resolves for `bin` (absolute paths, including the dynamic loader). */
function lddPaths(bin: string): string[] {
  const r = spawnSync("ldd", [bin], { encoding: "utf8" });
  expect(r.status).toBe(0);
  const paths = new Set<string>();
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) paths.add(m[1]);
  }
  return [...paths];
}

/**
 * A root containing only `files` (host path → path in the root) plus the libraries they need,
 * and empty /proc, /sys, /dev, /tmp directories to mount on.
 */
function makeRoot(files: Record<string, string>): string {
  const root = mkdtempSync(join(work, "root-"));
  for (const d of ["proc", "sys", "dev", "tmp"]) mkdirSync(join(root, d));
  const libs = new Set<string>();
  for (const [from, to] of Object.entries(files)) {
    mkdirSync(dirname(join(root, to)), { recursive: true });
    copyFileSync(from, join(root, to));
    for (const l of lddPaths(from)) libs.add(l);
  }
  for (const l of libs) {
    mkdirSync(dirname(join(root, l)), { recursive: true });
    copyFileSync(l, join(root, l)); // follows symlinks: the root gets the real file under the linked name
  }
  return root;
}

/** Runs `argv` inside `root` in private mount + network namespaces, with a minimal environment. */
function runAirGapped(root: string, argv: string[]) {
  const script = [
    "set -e",
    'R="$1"; shift',
    'mount -t proc proc "$R/proc"',
    'mount --rbind /sys "$R/sys"',
    'mount --rbind /dev "$R/dev"',
    'mount -t tmpfs -o mode=1777,size=64m tmpfs "$R/tmp"',
    'exec /usr/bin/env -i HOME=/ TMPDIR=/tmp PATH=/ /usr/sbin/chroot "$R" "$@"',
  ].join("\n");
  const r = spawnSync("unshare", ["--mount", "--net", "--propagation", "private", "sh", "-c", script, "sh", root, ...argv], {
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error };
}

describe.skipIf(exeSkip !== undefined)("dist/beetrace", () => {
  test("--help lists the commands and ends with examples", () => {
    const r = spawnSync(exe, ["--help"], { encoding: "utf8", cwd: work, timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Usage:");
    expect(r.stdout).toContain("EXAMPLES");
  });

  test("--version prints our version", () => {
    const r = spawnSync(exe, ["--version"], { encoding: "utf8", cwd: work, timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(BEETRACE_VERSION);
  });
});

// Compile a small entry point exactly as build.ts compiles src/main.ts (embedded.ts swapped for
// its rendered form) and look at the assets from inside the executable.
const probeExe = join(work, "print-embedded");
describe.skipIf(!assetsBuilt)("embedded assets inside a compiled executable", () => {
  test("resolve to /$bunfs paths whose bytes equal the built files", async () => {
    await compileExecutable(assets, join(import.meta.dir, "../fixtures/build/print-embedded.ts"), probeExe);
    const r = spawnSync(probeExe, [], { encoding: "utf8", cwd: work, timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const seen = JSON.parse(r.stdout) as {
      origin: string;
      libbpfBundle: string;
      bpfObjects: Record<string, string>;
      offsetsJson: string;
      files: Record<string, { size: number; sha256: string }>;
    };
    expect(seen.origin).toBe("embedded");
    expect(seen.libbpfBundle).toStartWith("/$bunfs/");
    expect(seen.offsetsJson).toStartWith("/$bunfs/");
    expect(Object.keys(seen.bpfObjects).sort()).toEqual(Object.keys(assets.bpfObjects).sort());
    for (const p of Object.values(seen.bpfObjects)) expect(p).toStartWith("/$bunfs/");
    const want: Record<string, { size: number; sha256: string }> = {
      libbpfBundle: { size: readFileSync(assets.libbpfBundle).length, sha256: sha(assets.libbpfBundle) },
      offsetsJson: { size: readFileSync(assets.offsetsJson).length, sha256: sha(assets.offsetsJson) },
    };
    for (const [n, p] of Object.entries(assets.bpfObjects)) want[`bpf:${n}`] = { size: readFileSync(p).length, sha256: sha(p) };
    expect(seen.files).toEqual(want);
  });
});

describe.skipIf(chrootSkip !== undefined)("air-gapped run (chroot with only the executable and glibc)", () => {
  test("beetrace --version and --help work with nothing else installed", () => {
    const root = makeRoot({ [exe]: "/beetrace" });
    try {
      const v = runAirGapped(root, ["/beetrace", "--version"]);
      expect(v.error).toBeUndefined();
      expect(v.stderr).toBe("");
      expect(v.status).toBe(0);
      expect(v.stdout).toContain(BEETRACE_VERSION);
      const h = runAirGapped(root, ["/beetrace", "--help"]);
      expect(h.status).toBe(0);
      expect(h.stdout).toContain("EXAMPLES");
      // `doctor` checks the kernel from inside the chroot once it exists; it must not crash.
      if (h.stdout.includes("doctor")) {
        const d = runAirGapped(root, ["/beetrace", "doctor"]);
        expect(d.stderr).not.toContain("BUG");
        expect([0, 22]).toContain(d.status ?? -1); // ok, or kernel_unsupported (src/errors.ts)
      }
      expect(mountsUnder(root)).toEqual([]);
    } finally {
      removeTree(root);
    }
  });

  test.skipIf(!assetsBuilt)("the embedded libbpf bundle loads there (empty tmpfs /tmp, no network)", () => {
    if (!existsSync(probeExe)) throw new Error("print-embedded was not compiled (the previous describe block failed)");
    const root = makeRoot({ [probeExe]: "/print-embedded" });
    try {
      const r = runAirGapped(root, ["/print-embedded", "--dlopen"]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const seen = JSON.parse(r.stdout) as { origin: string; libbpf: string };
      expect(seen.origin).toBe("embedded");
      expect(seen.libbpf).toMatch(/^1\.\d+$/);
      expect(mountsUnder(root)).toEqual([]);
    } finally {
      removeTree(root);
    }
  });
});
