/**
 * @module vendor/iced/iced_x86.gen — types for the generated (gitignored) iced_x86.gen.js.
 *
 * Committed by hand so that `tsc` passes on a fresh clone before scripts/setup.sh has run
 * scripts/vendor-iced.ts. The runtime object is exactly the iced-x86 package's exports.
 */
export declare const ICED_VERSION: string;
/** SHA-256 of the package's iced_x86.js the file was generated from (staleness check). */
export declare const GLUE_SHA256: string;
/** Runs the wasm-bindgen glue against these .wasm bytes; synchronous (compiles the module). */
export declare function instantiateIced(wasmBytes: Uint8Array): typeof import("iced-x86");
