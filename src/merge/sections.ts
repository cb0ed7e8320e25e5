/**
 * @module merge/sections — a capture's spans grouped by section, for commands that build one
 * OTLP resource per capture: a merged capture (`beetrace merge`, format.ts SectionRecord) holds
 * the spans of several processes, each section with its own header and so its own resource.
 * A capture without sections is one group with the file's header.
 */
import type { CaptureStream } from "../capture/reader.ts";
import type { CaptureHeader } from "../capture/format.ts";
import type { Span } from "../spans/model.ts";

export interface SectionSpans {
  header: CaptureHeader;
  /** The section's spans; consume it before asking for the next section (one pass over the file). */
  spans: Generator<Span>;
}

/** One pass over `stream.records()`, split at section items. */
export function* sections(stream: CaptureStream): Generator<SectionSpans> {
  const it = stream.records();
  let header: CaptureHeader | undefined = stream.header;
  while (header !== undefined) {
    let next: CaptureHeader | undefined;
    const spans = (function* (): Generator<Span> {
      for (let r = it.next(); !r.done; r = it.next()) {
        const x = r.value;
        if (x.type === "span") {
          const { type: _t, ...span } = x;
          yield span;
        } else if (x.type === "section") {
          next = x.header;
          return;
        }
      }
    })();
    yield { header, spans };
    // Whatever the consumer left of this section is skipped.
    for (const _ of spans);
    header = next;
  }
}
