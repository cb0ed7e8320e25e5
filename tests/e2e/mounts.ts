/**
 * @module tests/e2e/mounts — small helpers for e2e tests that mount things (a chroot's /proc,
 * a tiny tmpfs): list mounts under a directory, unmount them, never delete through a mount
 * point, and build a root holding only named files plus the shared libraries `ldd` names.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { ElfFile } from "../../src/binary/elf.ts";

/** Mount points at or under `dir` in the caller's mount namespace (field 5 of /proc/self/mountinfo, proc(5)). */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(dir + "/"));
}

/** Unmounts everything at or under `dir` (deepest first); returns what is still mounted. */
export function unmountAll(dir: string): string[] {
  for (const m of mountsUnder(dir).reverse()) spawnSync("umount", [m]);
  // A busy mount (a process still has a file open there) is detached lazily rather than leaked.
  for (const m of mountsUnder(dir).reverse()) spawnSync("umount", ["-l", m]);
  return mountsUnder(dir);
}

/** rm -rf, but never across a mount point (a leaked bind mount of /dev would be deleted through). */
export function removeTree(dir: string): void {
  const left = unmountAll(dir);
  if (left.length > 0) throw new Error(`not removing ${dir}: still mounted: ${left.join(", ")}`);
  rmSync(dir, { recursive: true, force: true });
}

/** Shared libraries `ldd` resolves for `bin` (absolute paths, including the dynamic loader). */
export function lddPaths(bin: string): string[] {
  const r = spawnSync("ldd", [bin], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ldd ${bin} failed: ${r.stdout}${r.stderr}`);
  const paths = new Set<string>();
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) paths.add(m[1]);
  }
  return [...paths];
}

/** ELF program header types (System V ABI gABI, "Program Header"): PT_DYNAMIC = 2, PT_INTERP = 3. */
const PT_DYNAMIC = 2;
const PT_INTERP = 3;

/** True if `bin` is a statically linked ELF executable: no interpreter, no dynamic section. */
export function isStaticExecutable(bin: string): boolean {
  const elf = ElfFile.parse(new Uint8Array(readFileSync(bin)), bin);
  return !elf.segments.some((s) => s.type === PT_INTERP || s.type === PT_DYNAMIC);
}

/**
 * A new directory under `parent` containing only `files` (host path → path in the root), the
 * shared libraries the dynamically linked ones need (static ones need none), and empty
 * /proc, /sys, /dev and /tmp directories to mount on.
 */
export function makeRoot(parent: string, files: Record<string, string>): string {
  const root = mkdtempSync(join(parent, "root-"));
  for (const d of ["proc", "sys", "dev", "tmp"]) mkdirSync(join(root, d));
  const libs = new Set<string>();
  for (const [from, to] of Object.entries(files)) {
    mkdirSync(dirname(join(root, to)), { recursive: true });
    copyFileSync(from, join(root, to));
    if (!isStaticExecutable(from)) for (const l of lddPaths(from)) libs.add(l);
  }
  for (const l of libs) {
    mkdirSync(dirname(join(root, l)), { recursive: true });
    copyFileSync(l, join(root, l)); // follows symlinks: the root gets the real file under the linked name
  }
  return root;
}

/** Every regular file under `dir` (relative paths), not descending into mount points. */
export function filesUnder(dir: string, rel = ""): string[] {
  const out: string[] = [];
  const mounts = new Set(mountsUnder(dir));
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (!mounts.has(join(dir, p))) out.push(...filesUnder(dir, p));
    } else if (statSync(join(dir, p), { throwIfNoEntry: false })?.isFile()) out.push(p);
  }
  return out;
}
