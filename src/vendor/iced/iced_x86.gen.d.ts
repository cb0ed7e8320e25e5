/**
 * @module vendor/iced/iced_x86.gen — types for the generated (gitignored) iced_x86.gen.js.
 *
 * Committed by hand so that `tsc` passes on a fresh clone before scripts/setup.sh has run
 * scripts/vendor-iced.ts. The runtime object is exactly the iced-x86 package's exports.
 */
export declare const ICED_VERSION: string;
/** SHA-256 of the package's iced_x86.js the file was generated from (staleness check). */
export declare const GLUE_SHA256: string;
/** Revision of scripts/vendor-iced.ts that wrote the file (absent before revision 2). */
export declare const GENERATOR_REVISION: number | undefined;
/**
 * Runs the wasm-bindgen glue against the .wasm bytes (compiled here, synchronously) or, from
 * revision 2 on, against a module compiled ahead with WebAssembly.compile.
 */
export declare function instantiateIced(wasm: Uint8Array | WebAssembly.Module): typeof import("iced-x86") & IcedNames;
/** Added by scripts/vendor-iced.ts (revision 3 on). */
export interface IcedNames {
  /** The Mnemonic enum's member names, indexed by value ("Jbe"), without building the enum. */
  readonly MnemonicNames?: readonly string[];
}
