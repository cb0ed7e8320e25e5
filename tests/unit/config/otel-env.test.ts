/** @module tests/unit/config/otel-env — OpenTelemetry environment variables, flags, sampler, resource. */
import { describe, expect, test } from "bun:test";
import { TracerError } from "../../../src/errors.ts";
import {
  DEFAULT_OTLP_GRPC_ENDPOINT,
  makeSampler,
  mergeFlags,
  parseOtelEnv,
  targetResource,
  traceIdRatioSampled,
  tracesUrlFromFlag,
} from "../../../src/config/otel-env.ts";
import { BEETRACE_VERSION } from "../../../src/version.ts";

function usageError(fn: () => unknown): TracerError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TracerError);
    const t = e as TracerError;
    expect(t.code).toBe("usage");
    expect(t.hint ?? "").not.toBe("");
    return t;
  }
  throw new Error("expected a usage error");
}

describe("parseOtelEnv", () => {
  test("defaults: no endpoint, http/protobuf, no compression, 10 s, parentbased_always_on", () => {
    expect(parseOtelEnv({})).toEqual({
      exporter: "otlp",
      endpoint: undefined,
      endpointSource: undefined,
      protocol: "http/protobuf",
      headers: {},
      compression: "none",
      timeoutMs: 10_000,
      serviceName: undefined,
      resourceAttributes: {},
      sampler: { name: "parentbased_always_on", ratio: 1 },
      contextIn: true,
      ignoredPropagators: [],
      target: {},
    });
  });

  test("OTEL_PROPAGATORS: trace context is read unless the list leaves out tracecontext; other formats are named back", () => {
    const p = (v: string) => {
      const c = parseOtelEnv({ OTEL_PROPAGATORS: v });
      return { contextIn: c.contextIn, ignored: c.ignoredPropagators };
    };
    expect(p("tracecontext,baggage")).toEqual({ contextIn: true, ignored: [] });
    expect(p(" TraceContext ")).toEqual({ contextIn: true, ignored: [] });
    expect(p("none")).toEqual({ contextIn: false, ignored: [] });
    expect(p("baggage")).toEqual({ contextIn: false, ignored: [] });
    expect(p("tracecontext,b3")).toEqual({ contextIn: true, ignored: ["b3"] });
    expect(p("b3multi,jaeger")).toEqual({ contextIn: false, ignored: ["b3multi", "jaeger"] });
    // Empty counts as unset (the spec's default list).
    expect(p("")).toEqual({ contextIn: true, ignored: [] });
  });

  test("base endpoint gets /v1/traces appended; the traces endpoint is used as is and wins", () => {
    expect(parseOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://col:4318" }).endpoint).toBe("http://col:4318/v1/traces");
    expect(parseOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://col:4318/" }).endpoint).toBe("http://col:4318/v1/traces");
    expect(parseOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://gw/otlp" }).endpoint).toBe("https://gw/otlp/v1/traces");
    const both = parseOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:9999/custom" });
    expect(both.endpoint).toBe("http://b:9999/custom");
    expect(both.endpointSource).toBe("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    // Empty means unset (spec).
    expect(parseOtelEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "  ", OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1" }).endpoint).toBe("http://a:1/v1/traces");
  });

  test("headers: percent-decoded, trimmed, traces-specific keys override general ones", () => {
    const c = parseOtelEnv({
      OTEL_EXPORTER_OTLP_HEADERS: "api-key=abc%3D%3D, x-team = core%2Cinfra",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "api-key=traces-key",
    });
    expect(c.headers).toEqual({ "api-key": "traces-key", "x-team": "core,infra" });
  });

  test("per-signal protocol/compression/timeout take precedence", () => {
    const c = parseOtelEnv({
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
      OTEL_EXPORTER_OTLP_TIMEOUT: "2500",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "700",
    });
    expect([c.protocol, c.compression, c.timeoutMs]).toEqual(["http/json", "gzip", 700]);
  });

  test("service name, resource attributes, Go auto target variables", () => {
    const c = parseOtelEnv({
      OTEL_SERVICE_NAME: "checkout",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=prod,team=a%20b",
      OTEL_GO_AUTO_TARGET_EXE: "/srv/app",
      OTEL_GO_AUTO_TARGET_PID: "4242",
    });
    expect(c.serviceName).toBe("checkout");
    expect(c.resourceAttributes).toEqual({ "deployment.environment.name": "prod", team: "a b" });
    expect(c.target).toEqual({ exe: "/srv/app", pid: 4242 });
  });

  test("invalid values are usage errors naming the variable", () => {
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "thrift" })).message).toContain("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_COMPRESSION: "zstd" })).message).toContain("OTEL_EXPORTER_OTLP_COMPRESSION");
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_TIMEOUT: "10s" })).message).toContain("OTEL_EXPORTER_OTLP_TIMEOUT");
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).message).toContain("OTEL_EXPORTER_OTLP_ENDPOINT");
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "ftp://x" })).message).toContain("scheme");
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_HEADERS: "novalue" })).message).toContain("OTEL_EXPORTER_OTLP_HEADERS");
    expect(usageError(() => parseOtelEnv({ OTEL_RESOURCE_ATTRIBUTES: "a=%zz" })).message).toContain("OTEL_RESOURCE_ATTRIBUTES");
    expect(usageError(() => parseOtelEnv({ OTEL_TRACES_SAMPLER: "jaeger_remote" })).message).toContain("OTEL_TRACES_SAMPLER");
    expect(usageError(() => parseOtelEnv({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1.5" })).message).toContain("OTEL_TRACES_SAMPLER_ARG");
    expect(usageError(() => parseOtelEnv({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "half" })).message).toContain("OTEL_TRACES_SAMPLER_ARG");
    expect(usageError(() => parseOtelEnv({ OTEL_GO_AUTO_TARGET_PID: "-3" })).message).toContain("OTEL_GO_AUTO_TARGET_PID");
    expect(usageError(() => parseOtelEnv({ OTEL_TRACES_EXPORTER: "zipkin" })).message).toContain("OTEL_TRACES_EXPORTER");
    expect(parseOtelEnv({ OTEL_TRACES_EXPORTER: "none" }).exporter).toBe("none");
  });
});

describe("OTLP/gRPC endpoints", () => {
  test("grpc: the endpoint is used as is (scheme, host, port), no /v1/traces", () => {
    const c = parseOtelEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: "http://col:4317" });
    expect([c.protocol, c.endpoint, c.endpointSource]).toEqual(["grpc", "http://col:4317", "OTEL_EXPORTER_OTLP_ENDPOINT"]);
    expect(parseOtelEnv({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://col.example:443/" }).endpoint).toBe("https://col.example");
    expect(parseOtelEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: "https://col:4317" }).endpoint).toBe("https://col:4317");
    // No endpoint configured: no export, as for HTTP (the spec default is only a suggestion in hints).
    expect(parseOtelEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }).endpoint).toBeUndefined();
    expect(DEFAULT_OTLP_GRPC_ENDPOINT).toBe("http://localhost:4317");
  });

  test("grpc: a path, query or non-http scheme is a usage error naming the variable", () => {
    const e = usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: "http://col:4318/v1/traces" }));
    expect(e.message).toBe("OTEL_EXPORTER_OTLP_ENDPOINT: 'http://col:4318/v1/traces' has a path, but an OTLP/gRPC endpoint is only scheme, host and port");
    expect(e.hint).toContain("http://col:4318");
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://col:4317?x=1" })).message).toContain("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    expect(usageError(() => parseOtelEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: "dns:///col:4317" })).hint).toContain("OTLP/gRPC");
    expect(usageError(() => mergeFlags(parseOtelEnv({}), { otlp: "http://c:4317/x", protocol: "grpc" })).message).toContain("--otlp");
  });

  test("--protocol re-resolves the endpoint from what was given, whichever way it switches", () => {
    // Base URL from the environment: HTTP appends /v1/traces, gRPC does not.
    const env = parseOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://col:4317" });
    expect(env.endpoint).toBe("http://col:4317/v1/traces");
    expect(mergeFlags(env, { protocol: "grpc" }).endpoint).toBe("http://col:4317");
    const grpcEnv = parseOtelEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: "http://col:4318" });
    expect(mergeFlags(grpcEnv, { protocol: "http/protobuf" }).endpoint).toBe("http://col:4318/v1/traces");
    // The --otlp flag, with --protocol grpc in either source.
    expect(mergeFlags(parseOtelEnv({}), { otlp: "http://flag:4317", protocol: "grpc" })).toMatchObject({ endpoint: "http://flag:4317", endpointSource: "--otlp", protocol: "grpc" });
    expect(mergeFlags(grpcEnv, { otlp: "https://flag:4317/" }).endpoint).toBe("https://flag:4317");
    expect(mergeFlags(parseOtelEnv({}), { otlp: "http://flag:4318" }).endpoint).toBe("http://flag:4318/v1/traces");
  });
});

describe("mergeFlags", () => {
  test("flags override the environment; --header merges; --otlp base vs full URL", () => {
    const env = parseOtelEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://env:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "a=1,b=2",
      OTEL_TRACES_EXPORTER: "none",
      OTEL_GO_AUTO_TARGET_EXE: "/srv/app",
    });
    const m = mergeFlags(env, { otlp: "http://flag:4318", header: ["b=3", "c=4"], protocol: "http/json", timeout: "1500", pid: "77" });
    expect(m.endpoint).toBe("http://flag:4318/v1/traces");
    expect(m.endpointSource).toBe("--otlp");
    expect(m.exporter).toBe("otlp");
    expect(m.headers).toEqual({ a: "1", b: "3", c: "4" });
    expect(m.protocol).toBe("http/json");
    expect(m.timeoutMs).toBe(1500);
    // --pid replaces the env's target selection entirely.
    expect(m.target).toEqual({ pid: 77 });
    // The input config is not modified.
    expect(env.headers).toEqual({ a: "1", b: "2" });
    expect(tracesUrlFromFlag("http://gw:8080/otlp/v1/traces")).toBe("http://gw:8080/otlp/v1/traces");
    expect(usageError(() => mergeFlags(env, { protocol: "grpc2" })).message).toBe("--protocol: unknown protocol 'grpc2'");
    expect(usageError(() => mergeFlags(env, { header: "x" })).message).toContain("--header");
  });
});

describe("sampler", () => {
  test("TraceIdRatioBased uses the low 56 bits: exact threshold behaviour", () => {
    // R = 0x80000000000000 is exactly half of 2^56: kept at ratio 0.5 (R >= T), not below.
    const half = "0123456789abcdef0080000000000000";
    expect(traceIdRatioSampled(half, 0.5)).toBe(true);
    expect(traceIdRatioSampled(half, 0.49)).toBe(false);
    // The high 72 bits do not matter.
    expect(traceIdRatioSampled("ffffffffffffffffff80000000000000", 0.5)).toBe(true);
    expect(traceIdRatioSampled("00000000000000000000000000000001", 0.001)).toBe(false);
    expect(traceIdRatioSampled("000000000000000000ffffffffffffff", 0.001)).toBe(true);
    expect(traceIdRatioSampled("00000000000000000000000000000000", 1)).toBe(true);
    expect(traceIdRatioSampled("000000000000000000ffffffffffffff", 0)).toBe(false);
  });

  test("deterministic, monotonic in the ratio, and close to the ratio over random ids", () => {
    const ids = Array.from({ length: 20_000 }, () => [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join(""));
    const kept = (r: number) => ids.filter((id) => traceIdRatioSampled(id, r));
    const k10 = kept(0.1);
    const k25 = new Set(kept(0.25));
    expect(k10.every((id) => k25.has(id))).toBe(true);
    expect(k10.length / ids.length).toBeGreaterThan(0.09);
    expect(k10.length / ids.length).toBeLessThan(0.11);
    expect(kept(0.1)).toEqual(k10);
  });

  test("parentbased: the parent's sampled flag decides; roots use the root sampler", () => {
    const s = makeSampler({ name: "parentbased_traceidratio", ratio: 0 });
    const id = "000000000000000000ffffffffffffff";
    expect(s(id, undefined)).toBe(false);
    expect(s(id, { remote: true, sampled: true })).toBe(true);
    expect(s(id, { remote: false, sampled: false })).toBe(false);
    expect(makeSampler({ name: "parentbased_always_off", ratio: 1 })(id, { remote: true, sampled: true })).toBe(true);
    expect(makeSampler({ name: "always_off", ratio: 1 })(id, { remote: true, sampled: true })).toBe(false);
    expect(makeSampler({ name: "traceidratio", ratio: 0 })(id, { remote: true, sampled: true })).toBe(false);
  });
});

describe("targetResource", () => {
  const host = { name: "web-1", arch: "x64", kernel: "6.1.0-18-amd64" };
  test("from the target's environment: service name, resource attributes, process and telemetry keys", () => {
    const env = new Map([
      ["OTEL_SERVICE_NAME", "cart"],
      ["OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,deployment.environment.name=staging,process.pid=1"],
    ]);
    expect(targetResource(4242, "/srv/cart/server (deleted)", env, { goVersion: "go1.22.3", host })).toEqual({
      "process.pid": "1", // the target said so explicitly; its attributes win over detection
      "process.executable.name": "server",
      "process.executable.path": "/srv/cart/server",
      "process.runtime.name": "go",
      "process.runtime.version": "go1.22.3",
      "host.name": "web-1",
      "host.arch": "amd64",
      "os.type": "linux",
      "os.version": "6.1.0-18-amd64",
      "deployment.environment.name": "staging",
      "service.name": "cart",
      "telemetry.sdk.name": "beetrace",
      "telemetry.sdk.language": "go",
      "telemetry.sdk.version": BEETRACE_VERSION,
      "telemetry.distro.name": "beetrace",
      "telemetry.distro.version": BEETRACE_VERSION,
    });
  });

  test("service.name precedence: beetrace's config, then the target's variables, then the exe name", () => {
    const env = new Map([["OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"]]);
    expect(targetResource(1, "/bin/app", new Map(), { host })["service.name"]).toBe("app");
    expect(targetResource(1, "/bin/app", env, { host })["service.name"]).toBe("from-attrs");
    expect(targetResource(1, "/bin/app", new Map([...env, ["OTEL_SERVICE_NAME", "from-env"]]), { host })["service.name"]).toBe("from-env");
    expect(
      targetResource(1, "/bin/app", new Map([["OTEL_SERVICE_NAME", "from-env"]]), { host, config: { serviceName: "flag", resourceAttributes: {} } })["service.name"],
    ).toBe("flag");
    // A malformed variable in the target's environment is ignored, not fatal.
    expect(targetResource(1, "/bin/app", new Map([["OTEL_RESOURCE_ATTRIBUTES", "junk"]]), { host })["service.name"]).toBe("app");
    // telemetry.* cannot be overridden by the target.
    expect(targetResource(1, "/bin/app", new Map([["OTEL_RESOURCE_ATTRIBUTES", "telemetry.sdk.name=x"]]), { host })["telemetry.sdk.name"]).toBe("beetrace");
  });
});
