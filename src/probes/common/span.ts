/**
 * @module probes/common/span — the span fields every probe fills the same way from the common
 * record header (struct rec_span): ids, times, parent, scope, truncation and read-error marks.
 */
import type { Attributes, Span } from "../../spans/model.ts";
import type { DecodeContext } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { SPAN_FLAGS } from "./header.ts";
import { BEETRACE_VERSION } from "../../version.ts";

const ZERO_SPAN_ID = "0000000000000000";

/** One shared, frozen scope object per scope name: spans of a probe need not carry copies (and the OTLP encoder groups them by identity). */
const SCOPES = new Map<string, Span["scope"]>();
function scopeOf(name: string): Span["scope"] {
  let scope = SCOPES.get(name);
  if (scope === undefined) SCOPES.set(name, (scope = Object.freeze({ name, version: BEETRACE_VERSION })));
  return scope;
}

/** Builds a span from the record header; status starts unset. */
export function baseSpan(r: RecordReader, ctx: DecodeContext, scopeName: string, name: string, kind: Span["kind"], attributes: Attributes): Span {
  const hexIds = ctx.idsAsBytes !== true;
  const span: Span = {
    traceId: hexIds ? r.hex("trace_id") : "",
    spanId: hexIds ? r.hex("span_id") : "",
    name,
    kind,
    startTimeUnixNano: ctx.toEpoch(r.u64("start_ns")),
    endTimeUnixNano: ctx.toEpoch(r.u64("end_ns")),
    attributes,
    status: { code: "unset" },
    scope: scopeOf(scopeName),
  };
  if (r.flags & SPAN_FLAGS.HAS_PARENT) {
    if (hexIds) {
      const parent = r.hex("parent_span_id");
      if (parent !== ZERO_SPAN_ID) span.parentSpanId = parent;
    } else if (r.u64("parent_span_id") !== 0n) span.parentSpanId = "";
  }
  if (r.flags & SPAN_FLAGS.READ_ERROR) attributes["beetrace.read_error"] = true;
  return span;
}

/** beetrace.truncated: which attributes hold a truncated value (string longer than its cap). */
export function noteTruncated(attrs: Attributes, r: RecordReader, names: Record<string, string>): void {
  if (!r.anyTruncated) return;
  const out: string[] = [];
  for (const [s, attr] of Object.entries(names)) if (r.truncated(s)) out.push(attr);
  if (out.length > 0) attrs["beetrace.truncated"] = out.join(",");
}
