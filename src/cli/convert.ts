/**
 * @module cli/convert — `beetrace convert FILE --to otlp-json [-o OUT]`.
 *
 * Writes OTLP JSON Lines: one ExportTraceServiceRequest per line, at most --batch spans each
 * (default 512), which is what the Collector's otlpjsonfile receiver reads. The capture is
 * streamed (src/capture/reader.ts): one batch of spans is held at a time, so memory does not
 * grow with the file. A truncated capture converts all its complete spans and says so on
 * stderr; a damaged one converts every intact span, then fails with corrupt_capture (exit 17)
 * naming the damaged byte ranges.
 */
import * as fs from "node:fs";
import { TracerError, fromSystemError } from "../errors.ts";
import { log } from "../log.ts";
import { damageError, openCapture } from "../capture/reader.ts";
import type { Span } from "../spans/model.ts";
import { DEFAULT_BATCH, otlpJsonLines, toOtlpProtobuf, type ResourceInfo } from "../export/otlp.ts";
import { writeStdout } from "./view.ts";
import { sections } from "../merge/sections.ts";
import { type FilterOptions, matchingTraceIds, parseFilters, serviceOf } from "./filters.ts";

export const CONVERT_FORMATS = ["otlp-json", "otlp-proto"] as const;

export interface ConvertOptions extends FilterOptions {
  to?: string;
  /** Output path; stdout when absent or "-" */
  out?: string;
  batch?: number | string;
}

export interface ConvertResult {
  spans: number;
  lines: number;
}

export async function convertCommand(file: string, opts: ConvertOptions = {}, write: (s: string) => Promise<void> = writeStdout): Promise<ConvertResult> {
  const to = opts.to ?? "otlp-json";
  if (!(CONVERT_FORMATS as readonly string[]).includes(to)) {
    throw new TracerError("usage", `unknown output format '${to}'`, { hint: `--to accepts: ${CONVERT_FORMATS.join(", ")}` });
  }
  const batch = parseBatch(opts.batch);
  // Filters keep whole traces with a matching span (src/cli/filters.ts): a first pass finds them.
  const filter = parseFilters(opts);
  const stream = openCapture(file);
  const keep = filter === undefined ? undefined : matchingTraceIds(stream.spans(), filter, serviceOf(stream.header));
  let spans = 0;
  const kept = function* (section: Iterable<Span>): Generator<Span> {
    for (const span of section) {
      if (keep !== undefined && !keep.has(span.traceId)) continue;
      spans++;
      yield span;
    }
  };
  // A merged capture holds several processes: each section gets its own resource.
  const json = function* (): Generator<string> {
    for (const sec of sections(stream)) yield* otlpJsonLines(kept(sec.spans), sec.header, batch);
  };
  const proto = function* (): Generator<Uint8Array> {
    for (const sec of sections(stream)) yield* otlpProtoMessages(kept(sec.spans), sec.header, batch);
  };
  let count = 0;
  try {
    if (to === "otlp-proto") {
      count = writeProtoMessages(opts.out, proto());
    } else if (opts.out === undefined || opts.out === "-") {
      for (const line of json()) {
        await write(line + "\n");
        count++;
      }
    } else {
      count = writeFileLines(opts.out, json());
    }
  } finally {
    stream.close();
  }
  const s = stream.summary;
  if (s.truncated) log.warn(`${file} is truncated (last ${s.trailingBytes} bytes incomplete); converted the ${spans} complete spans`);
  if (s.skipped > 0) log.warn(`${file}: ${s.skipped} records of a newer kind were skipped`);
  log.verbose(`converted ${spans} spans into ${count} OTLP requests`);
  // All intact spans are written out; only now report the damage (exit 17).
  const err = damageError(file, s);
  if (err) throw err;
  return { spans, lines: count };
}

function parseBatch(b: number | string | undefined): number {
  if (b === undefined) return DEFAULT_BATCH;
  const n = typeof b === "number" ? b : Number(b);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    throw new TracerError("usage", `--batch must be a whole number from 1 to 100000, got '${String(b)}'`, { hint: `the default is ${DEFAULT_BATCH} spans per line` });
  }
  return n;
}

/** The output holds the same data as the capture (URLs, peers), so it gets mode 0600 too. */
function writeFileLines(path: string, lines: Iterable<string>): number {
  let fd: number;
  try {
    fd = fs.openSync(path, "w", 0o600);
  } catch (e) {
    throw outputError(e, path);
  }
  let count = 0;
  try {
    for (const line of lines) {
      fs.writeSync(fd, line + "\n");
      count++;
    }
  } catch (e) {
    if (e instanceof TracerError) throw e;
    throw outputError(e, path).withContext(`after ${count} lines`);
  } finally {
    fs.closeSync(fd);
  }
  return count;
}

function outputError(e: unknown, path: string): TracerError {
  const t = fromSystemError(e, `write ${path}`);
  return new TracerError("output_failed", t.message, { hint: t.hint ?? "choose another -o path", cause: e });
}

/**
 * The Collector file exporter's `format: proto`: each ExportTraceServiceRequest is preceded by
 * its length as a 4-byte big-endian unsigned integer (fileexporter "proto" marshaler framing).
 */
export function* otlpProtoMessages(spans: Iterable<Span>, info: ResourceInfo, batch = DEFAULT_BATCH): Generator<Uint8Array> {
  const frame = (msg: Uint8Array) => {
    const framed = new Uint8Array(4 + msg.byteLength);
    new DataView(framed.buffer).setUint32(0, msg.byteLength, false);
    framed.set(msg, 4);
    return framed;
  };
  let chunk: Span[] = [];
  for (const s of spans) {
    chunk.push(s);
    if (chunk.length >= batch) {
      yield frame(toOtlpProtobuf(chunk, info));
      chunk = [];
    }
  }
  if (chunk.length > 0) yield frame(toOtlpProtobuf(chunk, info));
}

/** Binary output: never to a terminal-bound stdout by accident, so -o is required. */
function writeProtoMessages(out: string | undefined, messages: Iterable<Uint8Array>): number {
  if (out === undefined || out === "-") {
    throw new TracerError("usage", "--to otlp-proto writes binary data and needs -o FILE", { hint: "beetrace convert cap.cbor --to otlp-proto -o traces.binpb" });
  }
  let fd: number;
  try {
    fd = fs.openSync(out, "w", 0o600);
  } catch (e) {
    throw outputError(e, out);
  }
  let count = 0;
  try {
    for (const m of messages) {
      let off = 0;
      while (off < m.byteLength) off += fs.writeSync(fd, m, off, m.byteLength - off);
      count++;
    }
  } catch (e) {
    if (e instanceof TracerError) throw e;
    throw outputError(e, out).withContext(`after ${count} messages`);
  } finally {
    fs.closeSync(fd);
  }
  return count;
}
