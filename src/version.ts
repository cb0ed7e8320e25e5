/** @module version — the tracer's own version, written into capture headers and OTLP resources. */
export const BEETRACE_VERSION = "0.1.0";
