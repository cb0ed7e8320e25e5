/**
 * @module types/assets — types for non-code files imported `with { type: "file" }`.
 *
 * Bun resolves such an import to a path string: the file in the source tree when run from
 * source, and a path inside the executable's embedded filesystem ("/$bunfs/...") after
 * `bun build --compile`. Read it with fs; never assume it exists on disk elsewhere.
 */
declare module "*.wasm" {
  const path: string;
  export default path;
}
/** Shared objects (the libbpf bundle; src/bpf/embedded.ts). */
declare module "*.so" {
  const path: string;
  export default path;
}
/** Compiled BPF objects, `.cache/bpf/<name>.bpf.o` (src/bpf/embedded.ts). */
declare module "*.o" {
  const path: string;
  export default path;
}
/**
 * JSON imported as a file. A JSON file that exists is typed from its contents instead
 * (tsconfig resolveJsonModule), so this only covers files made by the build.
 */
declare module "*.json" {
  const path: string;
  export default path;
}
