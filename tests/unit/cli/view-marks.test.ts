/**
 * @module tests/unit/cli/view-marks — `view` shows on a span's own line when its values rest on
 * a guessed struct-field offset or were cut to fit their record (issue: honest guesses).
 */
import { expect, test } from "bun:test";
import { renderCapture } from "../../../src/cli/view.ts";
import { sampleHeader, sampleSpans } from "../capture/fixture.ts";

test("guessed offsets and truncated values are marked on the span line", () => {
  const base = sampleSpans()[0]!;
  const span = {
    ...base,
    attributes: { ...base.attributes, "beetrace.guessed_offsets": "net/http.http2responseWriterState.status", "beetrace.truncated": "url.path" },
  };
  const lines = renderCapture(
    { header: sampleHeader(), records: [{ type: "span" as const, ...span }], truncated: false, trailingBytes: 0, skipped: 0 },
    { width: 400 },
  );
  const line = lines.find((l) => l.includes(span.name));
  expect(line).toContain("[guessed offsets: net/http.http2responseWriterState.status]");
  expect(line).toContain("[truncated: url.path]");
});
