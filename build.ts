/**
 * @module build — compiles bpf/*.bpf.c, builds the embedded libbpf bundle and produces
 * dist/beetrace with `bun build --compile`. (Filled in by the build work.)
 */
console.log("build: nothing to build yet");
