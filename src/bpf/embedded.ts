/**
 * @module bpf/embedded — where the libbpf bundle, the compiled BPF objects and offsets.json are.
 *
 * Two origins, one shape:
 * - "embedded": inside `dist/beetrace`. build.ts hands `bun build --compile` a copy of this file
 *   in which the block between the @embedded-assets markers is replaced by one
 *   `import x from "..." with { type: "file" }` per asset, so the bundler embeds each file and
 *   the paths point into the executable's own filesystem ("/$bunfs/root/..."). Read them with
 *   node:fs; dlopen of such a path makes Bun extract the file to $TMPDIR first.
 * - "source": `bun src/main.ts` (or Deno) in a checkout. The paths are the files build.ts wrote
 *   under .cache/ and the offsets.json at the repository root. Nothing here requires them to
 *   exist at import time, so `--help` works before any build; using a missing one throws a
 *   TracerError that says to run `bun build.ts`.
 * This is the only module that names asset files; everything else asks it.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { TracerError } from "../errors.ts";

export interface EmbeddedAssets {
  readonly origin: "embedded" | "source";
  /** libbpf + libelf + zlib in one shared object (scripts/build-libbpf.sh). */
  readonly libbpfBundle: string;
  /** Compiled BPF objects by name: bpf/<name>.bpf.c → "<name>". */
  readonly bpfObjects: Readonly<Record<string, string>>;
  /** The offsets.json snapshot, as a file. */
  readonly offsetsJson: string;
}

type AssetPaths = Omit<EmbeddedAssets, "origin">;

/** Where build.ts writes its outputs, relative to the repository root (also used by build.ts). */
export const SOURCE_LAYOUT = {
  libbpfBundle: ".cache/libbpf/out/libbpf-bundle.so",
  bpfObjectDir: ".cache/bpf",
  bpfObjectSuffix: ".bpf.o",
  offsetsJson: "offsets.json",
} as const;

// build.ts replaces everything between the two marker lines (in its in-memory copy only).
// @embedded-assets-begin
const compiled = null as AssetPaths | null;
// @embedded-assets-end

const BUILD_HINT = "run 'bun build.ts' (scripts/setup.sh does this) to build it";

function fromSourceTree(): EmbeddedAssets {
  const root = join(import.meta.dirname, "..", "..");
  const at = (rel: string) => join(root, rel);
  const objDir = at(SOURCE_LAYOUT.bpfObjectDir);
  const bpfObjects: Record<string, string> = {};
  if (existsSync(objDir)) {
    for (const f of readdirSync(objDir).sort()) {
      if (f.endsWith(SOURCE_LAYOUT.bpfObjectSuffix)) bpfObjects[f.slice(0, -SOURCE_LAYOUT.bpfObjectSuffix.length)] = join(objDir, f);
    }
  }
  const required = (rel: string, what: string): string => {
    const p = at(rel);
    if (!existsSync(p)) {
      throw new TracerError("file_not_found", `${what} is not built: running from source and ${rel} is missing`, { hint: BUILD_HINT });
    }
    return p;
  };
  return {
    origin: "source",
    // Getters: a fresh checkout must still be able to print --help.
    get libbpfBundle() {
      return required(SOURCE_LAYOUT.libbpfBundle, "the libbpf bundle");
    },
    bpfObjects,
    get offsetsJson() {
      return required(SOURCE_LAYOUT.offsetsJson, "offsets.json");
    },
  };
}

export const embedded: EmbeddedAssets = compiled !== null ? { origin: "embedded", ...compiled } : fromSourceTree();

/** Path of the compiled BPF object `name` (bpf/<name>.bpf.c); throws a TracerError naming what is missing. */
export function bpfObjectPath(name: string): string {
  const p = embedded.bpfObjects[name];
  if (p !== undefined) return p;
  const have = Object.keys(embedded.bpfObjects);
  const list = have.length > 0 ? have.join(", ") : "none";
  if (embedded.origin === "source") {
    throw new TracerError("file_not_found", `BPF object '${name}' is not built (running from source; built: ${list})`, {
      hint: `add bpf/${name}.bpf.c if it does not exist, then ${BUILD_HINT}`,
    });
  }
  throw new TracerError("internal", `BPF object '${name}' is not embedded in this beetrace (embedded: ${list})`, {
    hint: "this executable was built without it; rebuild with 'bun build.ts'",
  });
}
