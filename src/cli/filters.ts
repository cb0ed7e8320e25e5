/**
 * @module cli/filters — the span filters shared by `view`, `view --html`, `convert` and `summary`:
 * `--trace ID`, `--service NAME`, `--name GLOB`, `--min-duration 100ms`, `--errors`,
 * `--since T`, `--until T`.
 *
 * `--trace` picks traces by id prefix; every other filter is a test on one span. `summary`
 * counts the spans that pass every filter; `view` and `convert` keep whole traces — every span
 * of a trace in which at least one span passes — so trees stay complete (the parent of a slow
 * span is what explains it).
 *
 * The option parser (cac, through mri) turns an all-digit value into a number, which drops the
 * leading zeros of a trace id and the precision of a nanosecond epoch past 2^53. So the values
 * of --trace, --since and --until are taken from the raw command line when it holds them.
 */
import { TracerError } from "../errors.ts";
import type { CaptureHeader } from "../capture/format.ts";
import type { Span } from "../spans/model.ts";

export interface FilterOptions {
  trace?: string | number | boolean;
  service?: string | number | boolean;
  name?: string | number | boolean;
  minDuration?: string | number | boolean;
  errors?: boolean;
  since?: string | number | boolean;
  until?: string | number | boolean;
}

export interface SpanFilter {
  /** Lowercase hex prefix of the trace ids to keep */
  readonly tracePrefix: string | undefined;
  /** True when a filter other than --trace is set (a per-span test). */
  readonly perSpan: boolean;
  /** The span passes --trace and every per-span filter; `service` is the span's service.name. */
  matches(span: Span, service: string): boolean;
  /** The options as given, for messages ("--service shop --errors"). */
  readonly description: string;
}

/** The options of a filtered command, for its --help (commands.ts registers them). */
export const FILTER_OPTIONS: readonly [flag: string, help: string][] = [
  ["--trace <id>", "Only traces whose id starts with this hex prefix"],
  ["--service <name>", "Only spans of this service (service.name; a glob: * ? [abc])"],
  ["--name <glob>", "Only spans whose name matches this glob, e.g. 'GET /items/*'"],
  ["--min-duration <time>", "Only spans lasting at least this long (500us, 100ms, 2s, 1m)"],
  ["--errors", "Only spans with status Error"],
  ["--since <time>", "Only spans starting at or after this time (RFC 3339, or epoch s/ms/µs/ns)"],
  ["--until <time>", "Only spans starting before this time (RFC 3339, or epoch s/ms/µs/ns)"],
];

/** The filters given, or undefined when none is. Throws `usage` on a malformed value. */
export function parseFilters(opts: FilterOptions, argv: readonly string[] = process.argv): SpanFilter | undefined {
  const desc: string[] = [];
  const raw = (flag: string, v: unknown): string | undefined => {
    if (v === undefined || v === false) return undefined;
    if (v === true || v === "") throw new TracerError("usage", `${flag} needs a value`, { hint: FILTER_OPTIONS.find(([f]) => f.startsWith(flag + " "))?.[1] });
    if (Array.isArray(v)) throw new TracerError("usage", `${flag} was given more than once`, { hint: "give each filter once" });
    // A number came from the parser's digit conversion: the command line has the exact text.
    const s = typeof v === "number" ? (rawArg(argv, flag) ?? String(v)) : String(v);
    desc.push(`${flag} ${s}`);
    return s;
  };

  const traceText = raw("--trace", opts.trace);
  let tracePrefix: string | undefined;
  if (traceText !== undefined) {
    tracePrefix = traceText.trim().toLowerCase();
    if (!/^[0-9a-f]{1,32}$/.test(tracePrefix)) {
      throw new TracerError("usage", `--trace: '${traceText.slice(0, 80)}' is not a trace id or a prefix of one`, { hint: "a trace id is 32 hex digits; a prefix of it is enough" });
    }
  }
  const serviceText = raw("--service", opts.service);
  const service = serviceText === undefined ? undefined : globToRegExp(serviceText);
  const nameText = raw("--name", opts.name);
  const name = nameText === undefined ? undefined : globToRegExp(nameText);
  const minText = raw("--min-duration", opts.minDuration);
  const minDuration = minText === undefined ? undefined : parseDurationNs(minText, "--min-duration");
  const errors = opts.errors === true;
  if (errors) desc.push("--errors");
  const sinceText = raw("--since", opts.since);
  const since = sinceText === undefined ? undefined : parseTimeNs(sinceText, "--since");
  const untilText = raw("--until", opts.until);
  const until = untilText === undefined ? undefined : parseTimeNs(untilText, "--until");
  if (since !== undefined && until !== undefined && until <= since) {
    throw new TracerError("usage", `--until (${untilText}) is not after --since (${sinceText})`, { hint: "--since is inclusive, --until exclusive" });
  }
  if (desc.length === 0) return undefined;

  const perSpan = service !== undefined || name !== undefined || minDuration !== undefined || errors || since !== undefined || until !== undefined;
  return {
    tracePrefix,
    perSpan,
    description: desc.join(" "),
    matches(span, svc) {
      if (tracePrefix !== undefined && !span.traceId.startsWith(tracePrefix)) return false;
      if (errors && span.status.code !== "error") return false;
      if (minDuration !== undefined && span.endTimeUnixNano - span.startTimeUnixNano < minDuration) return false;
      if (since !== undefined && span.startTimeUnixNano < since) return false;
      if (until !== undefined && span.startTimeUnixNano >= until) return false;
      if (service !== undefined && !service.test(svc)) return false;
      if (name !== undefined && !name.test(span.name)) return false;
      return true;
    },
  };
}

/** The value after `--flag` or in `--flag=value` on the raw command line (last one wins, like mri). */
function rawArg(argv: readonly string[], flag: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (a === flag && i + 1 < argv.length) found = argv[i + 1];
    else if (a.startsWith(flag + "=")) found = a.slice(flag.length + 1);
  }
  return found;
}

/** Ids of the traces with a span passing `filter` (view and convert keep these traces whole). */
export function matchingTraceIds(spans: Iterable<Span>, filter: SpanFilter, service: string): Set<string> {
  const keep = new Set<string>();
  for (const s of spans) if (!keep.has(s.traceId) && filter.matches(s, service)) keep.add(s.traceId);
  return keep;
}

/** service.name of a capture's spans: its resource's, else the target's, else the executable's name. */
export function serviceOf(header: CaptureHeader): string {
  const fromResource = header.resource?.["service.name"];
  if (typeof fromResource === "string" && fromResource !== "") return fromResource;
  if (header.target.serviceName !== "") return header.target.serviceName;
  const exe = header.target.exe.split("/").pop() ?? "";
  return exe !== "" ? exe : "unknown_service";
}

/** A shell-style glob (`*` any run, `?` one character, `[abc]`/`[!abc]` a class) matching the whole text. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "u");
}

const UNIT_NS: Record<string, bigint> = { ns: 1n, us: 1_000n, "µs": 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };

/** "100ms", "1.5s", "250us", "2m" → nanoseconds; a bare number is seconds (as with --duration). */
export function parseDurationNs(text: string, flag: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,9}))?\s*(ns|us|µs|ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new TracerError("usage", `${flag}: '${text.slice(0, 80)}' is not a duration`, { hint: "use e.g. 500us, 100ms, 1.5s or 2m" });
  const unit = UNIT_NS[m[3] ?? "s"]!;
  const frac = m[2] ?? "";
  // Exact decimal arithmetic: whole part times the unit, plus the fraction scaled to it.
  const ns = BigInt(m[1]!) * unit + (BigInt(frac.padEnd(9, "0")) * unit) / 1_000_000_000n;
  if (ns > 366n * 86_400n * 1_000_000_000n) throw new TracerError("usage", `${flag}: ${text} is out of range`, { hint: "use a duration up to a year" });
  return ns;
}

/**
 * A point in time → epoch nanoseconds: RFC 3339 (`2026-12-06T10:00:00Z`, fractions to the
 * nanosecond, `Z` or `±hh:mm`), or an epoch number whose unit its size tells: below 1e11
 * seconds (until the year 5138), below 1e14 milliseconds, below 1e17 microseconds, else
 * nanoseconds. Seconds may have a fraction.
 */
export function parseTimeNs(text: string, flag: string): bigint {
  const s = text.trim();
  const hint = "use RFC 3339 (2026-12-06T10:00:00Z, 2026-12-06T11:00:00.5+01:00) or epoch seconds, ms, µs or ns";
  const num = /^(\d+)(?:\.(\d{1,9}))?$/.exec(s);
  if (num) {
    const whole = BigInt(num[1]!);
    const frac = num[2];
    if (whole < 100_000_000_000n) return whole * 1_000_000_000n + (frac === undefined ? 0n : BigInt(frac.padEnd(9, "0")));
    if (frac !== undefined) throw new TracerError("usage", `${flag}: '${s}': only epoch seconds may have a fraction`, { hint });
    if (whole < 100_000_000_000_000n) return whole * 1_000_000n;
    if (whole < 100_000_000_000_000_000n) return whole * 1_000n;
    return whole;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) throw new TracerError("usage", `${flag}: '${s.slice(0, 80)}' is not a time`, { hint });
  const [, y, mo, d, h, mi, se, frac, zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  const check = new Date(ms);
  if (Number.isNaN(ms) || check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(se) > 60) {
    throw new TracerError("usage", `${flag}: '${s}' is not a valid date and time`, { hint });
  }
  let offsetMin = 0;
  if (zone !== undefined && zone.toUpperCase() !== "Z") {
    offsetMin = (zone[0] === "-" ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  return BigInt(ms - offsetMin * 60_000) * 1_000_000n + BigInt((frac ?? "").padEnd(9, "0"));
}
