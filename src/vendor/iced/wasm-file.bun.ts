/**
 * @module vendor/iced/wasm-file.bun — the iced-x86 .wasm as a file path, Bun only: `with { type:
 * "file" }` makes `bun build --compile` embed the file ("/$bunfs/..." inside the executable, the
 * node_modules path from source). Loaded through a literal require so other runtimes never parse it.
 */
import wasmPath from "iced-x86/iced_x86_bg.wasm" with { type: "file" };
export default wasmPath;
