/**
 * @module viewer/read — the viewer's one door to capture files: spans one at a time, with the
 * clock that dated each, and what the file says about itself (header, losses, truncation,
 * damage).
 *
 * It uses the capture reader's streaming API (openCapture → CaptureStream.records()), so a
 * million-span capture is read in bounded memory and never held as a million records. This is
 * the only viewer module that imports src/capture/reader.ts: when that API changes, only this
 * file follows.
 */
import { type CaptureSummary as ReaderSummary, damageError, openCapture } from "../capture/reader.ts";
import type { CaptureHeader, ClockFields } from "../capture/format.ts";
import { type LossCounters, type Span, zeroLosses } from "../spans/model.ts";
import type { TracerError } from "../errors.ts";

/** The reader's summary of one file, with what the viewer adds to it. */
export interface CaptureSummary extends Omit<ReaderSummary, "lastStats"> {
  file: string;
  header: CaptureHeader;
  /** From the end record, else the last stats record, else zeros */
  losses: LossCounters;
  /** Every clock anchor of the file: [0] the header's, then one per clock item */
  clocks: ClockFields[];
}

/**
 * Reads `file`, calling `onSpan` for each span in file order with the index (into
 * summary.clocks) of the anchor that converted it (-1: epoch times as stored, format 1) and the
 * file's header.
 */
export function readSpans(file: string, onSpan: (span: Span, clock: number, header: CaptureHeader) => void): CaptureSummary {
  const stream = openCapture(file);
  try {
    const header = stream.header;
    const clocks: ClockFields[] = [{ realtimeNs: header.clock.realtimeNs, boottimeNs: header.clock.boottimeNs, offsetNs: header.clock.offsetNs }];
    // Format 1 stores epoch times; format 2 stores boot-time stamps that the clock item before
    // each records chunk (or the header's anchor) converts.
    // A merged capture (`beetrace merge`) has sections, each with its own header (service).
    let section = header;
    for (const r of stream.records()) {
      if (r.type === "span") {
        const { type: _t, ...span } = r;
        onSpan(span, section.format < 2 ? -1 : clocks.length - 1, section);
      } else if (r.type === "clock") {
        clocks.push({ realtimeNs: r.realtimeNs, boottimeNs: r.boottimeNs, offsetNs: r.offsetNs });
      } else if (r.type === "section") {
        section = r.header;
        const c = r.header.clock;
        clocks.push({ realtimeNs: c.realtimeNs, boottimeNs: c.boottimeNs, offsetNs: c.offsetNs });
      }
    }
    const s = stream.summary;
    return {
      file,
      header,
      spans: s.spans,
      truncated: s.truncated,
      trailingBytes: s.trailingBytes,
      skipped: s.skipped,
      invalid: s.invalid,
      damaged: s.damaged,
      damagedBytes: s.damagedBytes,
      end: s.end,
      losses: s.end?.totals.losses ?? s.lastStats?.losses ?? zeroLosses(),
      clocks,
    };
  } finally {
    stream.close();
  }
}

/** The error to throw once everything intact was shown (exit 17), or undefined. */
export function damageOf(c: CaptureSummary): TracerError | undefined {
  return damageError(c.file, c);
}
