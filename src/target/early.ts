/**
 * @module target/early — imported first by the tracing commands (cli/trace.ts), before the rest
 * of their modules load: the x86 decoder's WebAssembly starts compiling on another thread
 * (vendor/iced prepareIced) while the main thread still loads the program, rather than once the
 * target is open. The tracing commands need it on every x86-64 target (the entry sites of the
 * probes: binary/probe-sites.ts), once their first BPF object is loading (trace/session.ts); by
 * then it has long compiled (bench/RESULTS.md, start-up). Nothing else happens here.
 */
import { prepareIced } from "../vendor/iced/index.ts";

// A tracer's targets run on its own machine: on another architecture it would compile for nothing.
if (process.arch === "x64") void prepareIced();
