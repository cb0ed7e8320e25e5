/**
 * @module config/otel-env — the OpenTelemetry environment variables, parsed into a typed config.
 *
 * Sources: OTel specification "Environment Variable Specification" (general SDK variables:
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_TRACES_EXPORTER)
 * and "OTLP Exporter Configuration" (OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT, HEADERS, PROTOCOL,
 * COMPRESSION, TIMEOUT}); OTel Go auto-instrumentation for OTEL_GO_AUTO_TARGET_{EXE,PID}.
 * Empty values count as unset (the spec says so for all of them). Invalid values are a
 * `usage` error naming the variable, never a silent default: an ops team that set a variable
 * wants it to take effect. Command-line flags override the environment (mergeFlags).
 */
import { basename } from "node:path";
import { hostname, arch as osArch, release } from "node:os";
import { TracerError } from "../errors.ts";
import type { Attributes } from "../spans/model.ts";
import { BEETRACE_VERSION } from "../version.ts";
import { detectedResource, telemetryResource } from "../export/otlp.ts";

export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";
export type OtlpCompression = "gzip" | "none";
export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio";

export interface SamplerConfig {
  name: SamplerName;
  /** Sampling ratio in [0, 1]; only used by the *traceidratio samplers (default 1.0). */
  ratio: number;
}

export interface OtelConfig {
  /** OTEL_TRACES_EXPORTER: "otlp" (default) or "none" (capture file only). */
  exporter: "otlp" | "none";
  /**
   * Where to send, or undefined when no endpoint was configured (no OTLP export). HTTP: the
   * full traces URL. gRPC: http(s)://host:port (the method path is fixed by the protocol).
   */
  endpoint: string | undefined;
  /** Which variable or flag the endpoint came from (for messages). */
  endpointSource: string | undefined;
  /** The endpoint as given, kept so a --protocol flag can re-resolve it (HTTP appends /v1/traces to a base, gRPC does not). */
  endpointInput?: EndpointInput;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  compression: OtlpCompression;
  timeoutMs: number;
  /** OTEL_SERVICE_NAME of the tracer's own environment (the target's wins: targetResource). */
  serviceName: string | undefined;
  /** OTEL_RESOURCE_ATTRIBUTES of the tracer's own environment. */
  resourceAttributes: Record<string, string>;
  sampler: SamplerConfig;
  /**
   * OTEL_PROPAGATORS: whether incoming W3C trace context (traceparent/tracestate) is read — true
   * unless the list leaves out "tracecontext" (e.g. "none"). The spec's default list is
   * "tracecontext,baggage".
   */
  contextIn: boolean;
  /** Propagators named in OTEL_PROPAGATORS that beetrace does not read (b3, jaeger, …): the caller warns. */
  ignoredPropagators: string[];
  target: { exe?: string; pid?: number };
}

/** OTLP/HTTP default port and path (OTLP spec "OTLP/HTTP": port 4318, /v1/traces). */
export const DEFAULT_OTLP_HTTP_BASE = "http://localhost:4318";
/** OTLP/gRPC default endpoint (OTLP exporter spec: http://localhost:4317). */
export const DEFAULT_OTLP_GRPC_ENDPOINT = "http://localhost:4317";

/** An endpoint as configured: a full traces URL, a base URL (env), or the --otlp flag. */
export interface EndpointInput {
  url: string;
  kind: "traces" | "base" | "flag";
  /** Variable or flag name, for messages */
  source: string;
}
export const TRACES_PATH = "v1/traces";
/** OTEL_EXPORTER_OTLP_TIMEOUT default (spec: 10 s). */
export const DEFAULT_TIMEOUT_MS = 10_000;

type Env = Record<string, string | undefined> | Map<string, string>;

function get(env: Env, name: string): string | undefined {
  const v = env instanceof Map ? env.get(name) : env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === "" ? undefined : t;
}

function usage(variable: string, problem: string, hint: string): TracerError {
  return new TracerError("usage", `${variable}: ${problem}`, { hint });
}

/** Parse the OTel variables of `env` (default: this process's environment). */
export function parseOtelEnv(env: Env = process.env): OtelConfig {
  const exporterRaw = get(env, "OTEL_TRACES_EXPORTER");
  let exporter: OtelConfig["exporter"] = "otlp";
  if (exporterRaw !== undefined) {
    // The value is a comma-separated list; we have exactly one exporter.
    const list = exporterRaw.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
    if (list.length === 1 && (list[0] === "otlp" || list[0] === "none")) exporter = list[0];
    else throw usage("OTEL_TRACES_EXPORTER", `'${exporterRaw}' is not supported`, "use 'otlp' (send OTLP over HTTP or gRPC) or 'none' (capture file only)");
  }

  const protocol = pick(env, "PROTOCOL", parseProtocol) ?? "http/protobuf";
  let endpointInput: EndpointInput | undefined;
  const tracesEp = get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseEp = get(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
  if (tracesEp !== undefined) endpointInput = { url: tracesEp, kind: "traces", source: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" };
  else if (baseEp !== undefined) endpointInput = { url: baseEp, kind: "base", source: "OTEL_EXPORTER_OTLP_ENDPOINT" };
  const endpoint = endpointInput === undefined ? undefined : resolveEndpoint(endpointInput, protocol);

  // Per-signal values take precedence (spec); for headers the two lists are merged, keys in
  // the traces list overriding, as the JS and Java SDKs do.
  const headers = {
    ...parseKeyValueList("OTEL_EXPORTER_OTLP_HEADERS", get(env, "OTEL_EXPORTER_OTLP_HEADERS")),
    ...parseKeyValueList("OTEL_EXPORTER_OTLP_TRACES_HEADERS", get(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")),
  };
  const compression = pick(env, "COMPRESSION", parseCompression) ?? "none";
  const timeoutMs = pick(env, "TIMEOUT", parseTimeout) ?? DEFAULT_TIMEOUT_MS;

  const resourceAttributes = parseKeyValueList("OTEL_RESOURCE_ATTRIBUTES", get(env, "OTEL_RESOURCE_ATTRIBUTES"));
  const serviceName = get(env, "OTEL_SERVICE_NAME");

  const target: OtelConfig["target"] = {};
  const exe = get(env, "OTEL_GO_AUTO_TARGET_EXE");
  if (exe !== undefined) target.exe = exe;
  const pid = get(env, "OTEL_GO_AUTO_TARGET_PID");
  if (pid !== undefined) target.pid = parsePid("OTEL_GO_AUTO_TARGET_PID", pid);

  return {
    exporter,
    endpoint,
    endpointSource: endpointInput?.source,
    ...(endpointInput ? { endpointInput } : {}),
    protocol,
    headers,
    compression,
    timeoutMs,
    serviceName,
    resourceAttributes,
    sampler: parseSampler(get(env, "OTEL_TRACES_SAMPLER"), get(env, "OTEL_TRACES_SAMPLER_ARG")),
    ...parsePropagators(get(env, "OTEL_PROPAGATORS")),
    target,
  };
}

/**
 * OTEL_PROPAGATORS (OTel SDK environment variables: a comma-separated list, default
 * "tracecontext,baggage", "none" for no propagator). beetrace reads W3C trace context only;
 * baggage is not a trace context (nothing to read for a span), other formats are reported back.
 */
function parsePropagators(v: string | undefined): { contextIn: boolean; ignoredPropagators: string[] } {
  if (v === undefined) return { contextIn: true, ignoredPropagators: [] };
  const list = v.split(",").map((x) => x.trim().toLowerCase()).filter((x) => x !== "");
  return {
    contextIn: list.includes("tracecontext"),
    ignoredPropagators: list.filter((x) => x !== "tracecontext" && x !== "baggage" && x !== "none"),
  };
}

/** OTEL_EXPORTER_OTLP_TRACES_<X> if set, else OTEL_EXPORTER_OTLP_<X>, parsed by `parse`. */
function pick<T>(env: Env, suffix: string, parse: (variable: string, v: string) => T): T | undefined {
  const specific = `OTEL_EXPORTER_OTLP_TRACES_${suffix}`;
  const general = `OTEL_EXPORTER_OTLP_${suffix}`;
  const s = get(env, specific);
  if (s !== undefined) return parse(specific, s);
  const g = get(env, general);
  if (g !== undefined) return parse(general, g);
  return undefined;
}

/**
 * The endpoint to use for `protocol`. OTLP/HTTP: a base URL gets /v1/traces, a traces URL is
 * used as is, the flag follows tracesUrlFromFlag. OTLP/gRPC (spec: the endpoint is used as is,
 * no signal path): scheme, host and port only.
 */
export function resolveEndpoint(input: EndpointInput, protocol: OtlpProtocol): string {
  if (protocol === "grpc") return grpcEndpoint(input.source, input.url);
  if (input.kind === "traces") return checkUrl(input.source, input.url);
  if (input.kind === "base") return tracesUrlFromBase(checkUrl(input.source, input.url));
  return tracesUrlFromFlag(input.url);
}

/**
 * An OTLP/gRPC endpoint: http:// (cleartext HTTP/2) or https:// (TLS) with a host and an
 * optional port (default 4317 is not assumed: a URL without a port means 80/443, as URLs do).
 * A path is refused rather than ignored: gRPC calls always go to the service's method path,
 * so a path here is almost always an OTLP/HTTP URL given by mistake.
 */
export function grpcEndpoint(variable: string, v: string): string {
  checkUrl(variable, v, `OTLP/gRPC needs an http:// (cleartext) or https:// (TLS) URL such as ${DEFAULT_OTLP_GRPC_ENDPOINT}`);
  const u = new URL(v);
  if ((u.pathname !== "/" && u.pathname !== "") || u.search !== "" || u.hash !== "") {
    throw usage(variable, `'${v}' has a path, but an OTLP/gRPC endpoint is only scheme, host and port`, `use ${u.protocol}//${u.host} (gRPC sends to /opentelemetry.proto.collector.trace.v1.TraceService/Export itself), or pick an http/* protocol for a URL with a path`);
  }
  return `${u.protocol}//${u.host}`;
}

function checkUrl(variable: string, v: string, schemeHint = "OTLP/HTTP needs an http:// or https:// URL (port 4318 by default)"): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw usage(variable, `'${v}' is not a URL`, "give a full URL such as http://collector:4318");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw usage(variable, `scheme '${u.protocol}' is not supported`, schemeHint);
  }
  return v;
}

/**
 * Base endpoint → traces URL (spec: "the signal-specific path is appended to the base URL",
 * v1/traces, with exactly one '/' between; query strings are not expected on a base URL).
 */
export function tracesUrlFromBase(base: string): string {
  return base.endsWith("/") ? base + TRACES_PATH : `${base}/${TRACES_PATH}`;
}

/**
 * The --otlp flag: a bare host URL (no path, or "/") is a base and gets /v1/traces; a URL with
 * a path is used as is (collectors behind gateways use custom paths).
 */
export function tracesUrlFromFlag(flag: string): string {
  checkUrl("--otlp", flag);
  const u = new URL(flag);
  return u.pathname === "/" || u.pathname === "" ? tracesUrlFromBase(`${u.protocol}//${u.host}`) : flag;
}

function parseProtocol(variable: string, v: string): OtlpProtocol {
  if (v === "http/protobuf" || v === "http/json" || v === "grpc") return v;
  throw usage(variable, `unknown protocol '${v}'`, "use http/protobuf (default; port 4318), http/json, or grpc (port 4317)");
}

function parseCompression(variable: string, v: string): OtlpCompression {
  if (v === "gzip" || v === "none") return v;
  throw usage(variable, `unknown compression '${v}'`, "use gzip or none");
}

function parseTimeout(variable: string, v: string): number {
  // Spec: an integer number of milliseconds.
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 3_600_000) {
    throw usage(variable, `'${v}' is not a timeout in milliseconds`, "give a whole number of milliseconds from 1 to 3600000 (default 10000)");
  }
  return Number(v);
}

function parsePid(variable: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 0x7fffffff) {
    throw usage(variable, `'${v}' is not a process id`, "give the numeric pid of the Go process");
  }
  return Number(v);
}

/**
 * `key1=value1,key2=value2` (W3C Baggage octets; spec for OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_EXPORTER_OTLP_HEADERS): keys and values are trimmed and percent-decoded.
 */
export function parseKeyValueList(variable: string, v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined) return out;
  for (const part of v.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw usage(variable, `'${part.trim().slice(0, 60)}' is not key=value`, "use a comma-separated list: key1=value1,key2=value2 (percent-encode ',' and '=' in values)");
    const key = decode(variable, part.slice(0, eq).trim());
    const value = decode(variable, part.slice(eq + 1).trim());
    if (key === "") throw usage(variable, "an entry has an empty key", "use key1=value1,key2=value2");
    out[key] = value;
  }
  return out;
}

function decode(variable: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw usage(variable, `'${s.slice(0, 60)}' has an invalid percent-encoding`, "encode special characters as %XX (e.g. %2C for ',')");
  }
}

const SAMPLERS: readonly SamplerName[] = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"];

function parseSampler(name: string | undefined, arg: string | undefined): SamplerConfig {
  // Spec default: parentbased_always_on.
  const n = (name ?? "parentbased_always_on").toLowerCase();
  if (!(SAMPLERS as readonly string[]).includes(n)) {
    throw usage("OTEL_TRACES_SAMPLER", `sampler '${name}' is not supported`, `use one of: ${SAMPLERS.join(", ")}`);
  }
  let ratio = 1;
  if (n.endsWith("traceidratio") && arg !== undefined) {
    const r = Number(arg);
    if (!/^[0-9.eE+-]+$/.test(arg) || !Number.isFinite(r) || r < 0 || r > 1) {
      throw usage("OTEL_TRACES_SAMPLER_ARG", `'${arg}' is not a ratio`, "give a number from 0 to 1, e.g. 0.25 to keep a quarter of the traces");
    }
    ratio = r;
  }
  return { name: n as SamplerName, ratio };
}

// ---------------------------------------------------------------------------------------------
// sampling

/** Our knowledge of a span's parent: none (root), or a parent whose sampled flag is known. */
export type ParentInfo = undefined | { remote: boolean; sampled: boolean };

/** 2^56: TraceIdRatioBased uses the rightmost 56 bits of the trace id (W3C Trace Context Level 2 randomness). */
const RANDOM_RANGE = 1n << 56n;

/**
 * TraceIdRatioBased decision: the OTel spec requires a deterministic function of the trace id
 * that is monotonic in the ratio, and says samplers should presume the rightmost 56 bits of the
 * trace id are random (W3C Trace Context Level 2). We use the threshold form of the spec's
 * consistent probability sampling: R = low 56 bits, T = round((1 - ratio) · 2^56), sample iff
 * R >= T. A lower ratio has a higher T, so everything it keeps a higher ratio keeps too.
 */
export function traceIdRatioSampled(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  if (!/^[0-9a-f]{32}$/.test(traceId)) return false;
  return BigInt(`0x${traceId.slice(18)}`) >= ratioThreshold(ratio);
}

/** T of traceIdRatioSampled: 0 keeps everything, 2^56 nothing (also the BPF programs' bee_sample_threshold). */
export function ratioThreshold(ratio: number): bigint {
  if (!(ratio > 0)) return RANDOM_RANGE;
  if (ratio >= 1) return 0n;
  // 2^56 needs more precision than a double's 53 bits; scale the ratio in two steps.
  return RANDOM_RANGE - BigInt(Math.round(ratio * 2 ** 28)) * (1n << 28n);
}

/** A sampling function for `cfg` (spec "Built-in samplers"; ParentBased with default delegates). */
export function makeSampler(cfg: SamplerConfig): (traceId: string, parent: ParentInfo) => boolean {
  const root = (traceId: string): boolean => {
    switch (cfg.name) {
      case "always_on":
      case "parentbased_always_on":
        return true;
      case "always_off":
      case "parentbased_always_off":
        return false;
      case "traceidratio":
      case "parentbased_traceidratio":
        return traceIdRatioSampled(traceId, cfg.ratio);
    }
  };
  if (!cfg.name.startsWith("parentbased_")) return (traceId) => root(traceId);
  // ParentBased defaults: a sampled parent (remote or local) → AlwaysOn, unsampled → AlwaysOff.
  return (traceId, parent) => (parent === undefined ? root(traceId) : parent.sampled);
}

// ---------------------------------------------------------------------------------------------
// flags

export interface OtelFlags {
  /** --otlp URL (HTTP: base or full traces URL, see tracesUrlFromFlag; gRPC: http(s)://host:port) */
  otlp?: string;
  protocol?: string;
  /** --header k=v, repeatable */
  header?: string | string[];
  compression?: string;
  /** --timeout in ms */
  timeout?: string | number;
  serviceName?: string;
  pid?: string | number;
  exe?: string;
}

/** Flags override the environment, field by field; headers merge (a flag overrides the same key). */
export function mergeFlags(env: OtelConfig, flags: OtelFlags): OtelConfig {
  const out: OtelConfig = { ...env, headers: { ...env.headers }, resourceAttributes: { ...env.resourceAttributes }, target: { ...env.target } };
  if (flags.protocol !== undefined) out.protocol = parseProtocol("--protocol", String(flags.protocol));
  if (flags.otlp !== undefined) {
    out.endpointInput = { url: String(flags.otlp), kind: "flag", source: "--otlp" };
    out.endpointSource = "--otlp";
    // An explicit --otlp means "export", whatever OTEL_TRACES_EXPORTER says.
    out.exporter = "otlp";
  }
  // The protocol decides the path: re-resolve whatever endpoint we have for the final protocol.
  if (out.endpointInput !== undefined && (flags.otlp !== undefined || flags.protocol !== undefined)) {
    out.endpoint = resolveEndpoint(out.endpointInput, out.protocol);
  }
  if (flags.compression !== undefined) out.compression = parseCompression("--compression", String(flags.compression));
  if (flags.timeout !== undefined) out.timeoutMs = parseTimeout("--timeout", String(flags.timeout));
  if (flags.header !== undefined) {
    const list = Array.isArray(flags.header) ? flags.header : [flags.header];
    for (const h of list) Object.assign(out.headers, parseKeyValueList("--header", String(h)));
  }
  if (flags.serviceName !== undefined) {
    const s = String(flags.serviceName).trim();
    if (s === "") throw usage("--service-name", "is empty", "give the service name, e.g. --service-name checkout");
    out.serviceName = s;
  }
  if (flags.pid !== undefined) {
    out.target = { pid: parsePid("--pid", String(flags.pid)) };
  } else if (flags.exe !== undefined) {
    out.target = { exe: String(flags.exe) };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// resource

export interface TargetResourceOptions {
  /** The target's Go version (build info), e.g. "go1.22.3" */
  goVersion?: string;
  /** Tracer-side configuration: beetrace's own OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME / --service-name */
  config?: Pick<OtelConfig, "resourceAttributes" | "serviceName">;
  /** For tests: host facts (default: this machine; kernel = its release) */
  host?: { name: string; arch: string; kernel?: string };
}

/**
 * The OTLP resource for spans of process `pid` (semantic conventions: service, process, host,
 * os, telemetry). What the operator set for beetrace (its own environment, --service-name)
 * wins over the target's environment, which wins over detected facts; within one environment
 * OTEL_SERVICE_NAME beats a service.name in OTEL_RESOURCE_ATTRIBUTES (spec). So service.name
 * is: --service-name / beetrace's OTEL_SERVICE_NAME, beetrace's service.name attribute, the
 * target's OTEL_SERVICE_NAME, the target's service.name attribute, else the executable name.
 * telemetry.* always names beetrace (src/export/otlp.ts telemetryResource).
 *
 * Built once per session: the tracer stores it in the capture header and the live OTLP
 * exporter sends exactly that header resource, so `convert`/`export` of the capture send the
 * same resource as the live stream did.
 */
export function targetResource(pid: number, exePath: string, environ: Map<string, string>, opts: TargetResourceOptions = {}): Attributes {
  const exe = exePath.replace(/ \(deleted\)$/, "");
  const exeName = basename(exe);
  const host = opts.host ?? { name: hostname(), arch: osArch() };
  const attrs = detectedResource({ pid, exePath: exe, goVersion: opts.goVersion ?? "", host: { name: host.name, arch: host.arch, kernel: host.kernel ?? release() } });
  const ownAttrs = opts.config?.resourceAttributes ?? {};
  let targetAttrs: Record<string, string> = {};
  try {
    targetAttrs = parseKeyValueList("OTEL_RESOURCE_ATTRIBUTES", get(environ, "OTEL_RESOURCE_ATTRIBUTES"));
  } catch {
    // The target's own environment is not ours to reject: an invalid value there is ignored,
    // as the target's SDK would (spec: invalid resource attributes are discarded).
    targetAttrs = {};
  }
  Object.assign(attrs, targetAttrs, ownAttrs);
  const service =
    opts.config?.serviceName ??
    ownAttrs["service.name"] ??
    get(environ, "OTEL_SERVICE_NAME") ??
    targetAttrs["service.name"] ??
    (exeName !== "" ? exeName : "unknown_service:go");
  attrs["service.name"] = service;
  Object.assign(attrs, telemetryResource({ name: "beetrace", version: BEETRACE_VERSION }));
  return attrs;
}

