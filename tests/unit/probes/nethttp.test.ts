/** @module tests/unit/probes/nethttp — record decoding and span building of the net/http probes, from hand-built bytes. */
import { describe, expect, test } from "bun:test";
import {
  C_ENUMS,
  CLIENT_END,
  CLIENT_START,
  END_HDR,
  SERVER_END,
  SERVER_START,
  START_HDR,
  type RecordLayout,
} from "../../../src/probes/nethttp/records.ts";
import { nethttpServer } from "../../../src/probes/nethttp/server.ts";
import { nethttpClient } from "../../../src/probes/nethttp/client.ts";
import { PROBES, probeFields, probeForRecordType, probeSymbols } from "../../../src/probes/registry.ts";
import type { Decoded, FlagContext, ProbeManifest } from "../../../src/probes/probe.ts";
import type { Span, SpanEnd, SpanStart } from "../../../src/spans/model.ts";
import { escapePath, routeFromPattern, splitHostPort } from "../../../src/probes/nethttp/semconv.ts";

const E = C_ENUMS;
const TRACE = "0102030405060708090a0b0c0d0e0f10";
const SPAN = "a1a2a3a4a5a6a7a8";
const PARENT = "b1b2b3b4b5b6b7b8";

/** Writes records the way bpf/nethttp.bpf.c does, into a buffer with junk around them. */
class RecordWriter {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(
    readonly layout: RecordLayout,
    readonly base = 8,
  ) {
    // Junk before and after, and junk in unused string bytes: decoders must not read it.
    this.bytes = new Uint8Array(base + layout.size + 16).fill(0xee);
    this.view = new DataView(this.bytes.buffer);
  }
  private off(name: string, l: RecordLayout = this.layout): number {
    const f = l.fields[name];
    if (!f) throw new Error(`no field ${name} in ${l.struct}`);
    return this.base + f.offset;
  }
  u16(name: string, v: number): this {
    this.view.setUint16(this.off(name), v, true);
    return this;
  }
  u32(name: string, v: number, l?: RecordLayout): this {
    this.view.setUint32(this.off(name, l), v, true);
    return this;
  }
  u64(name: string, v: bigint, l?: RecordLayout): this {
    this.view.setBigUint64(this.off(name, l), v, true);
    return this;
  }
  hex(name: string, h: string, l?: RecordLayout): this {
    const o = this.off(name, l);
    for (let i = 0; i < h.length / 2; i++) this.bytes[o + i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
    return this;
  }
  /** Like go_read_string: real length in <name>_len, min(len, size) bytes copied. */
  str(name: string, s: string, realLen?: number): this {
    const enc = new TextEncoder().encode(s);
    const f = this.layout.fields[name]!;
    this.bytes.set(enc.subarray(0, f.size), this.off(name));
    return this.u32(`${name}_len`, realLen ?? enc.length);
  }
  decode(p: ProbeManifest, length = this.layout.size): Decoded {
    return p.decode(this.view, this.base, length);
  }
}

function serverStart(o: {
  method?: string;
  path?: string;
  host?: string;
  remote?: string;
  major?: number;
  minor?: number;
  reqFlags?: number;
  flags?: number;
  pathLen?: number;
}): RecordWriter {
  return new RecordWriter(SERVER_START)
    .u32("type", E.REC_NETHTTP_SERVER_START, START_HDR)
    .u32("flags", o.flags ?? 0, START_HDR)
    .u32("pid", 4242, START_HDR)
    .u32("tid", 4243, START_HDR)
    .u64("start_ns", 1_000_000n, START_HDR)
    .u64("goroutine", 0xc000123456n, START_HDR)
    .hex("trace_id", TRACE, START_HDR)
    .hex("span_id", SPAN, START_HDR)
    .hex("parent_span_id", "0000000000000000", START_HDR)
    .str("method", o.method ?? "GET")
    .str("path", o.path ?? "/items/42", o.pathLen)
    .str("host", o.host ?? "example.com:8080")
    .str("remote", o.remote ?? "10.1.2.3:55000")
    .u16("proto_major", o.major ?? 1)
    .u16("proto_minor", o.minor ?? 1)
    .u32("req_flags", o.reqFlags ?? E.NETHTTP_SERVER_F_TLS_KNOWN);
}

function serverEnd(o: { status?: number; pattern?: string; flags?: number }): RecordWriter {
  const w = new RecordWriter(SERVER_END)
    .u32("type", E.REC_NETHTTP_SERVER_END, END_HDR)
    .u32("flags", o.flags ?? E.NETHTTP_SERVER_END_F_STATUS | E.NETHTTP_SERVER_END_F_PATTERN, END_HDR)
    .u64("end_ns", 3_500_000n, END_HDR)
    .hex("span_id", SPAN, END_HDR)
    .u32("status", o.status ?? 200);
  return w.str("pattern", o.pattern ?? "");
}

function clientStart(o: {
  method?: string;
  scheme?: string;
  urlHost?: string;
  path?: string;
  reqHost?: string;
  urlFlags?: number;
  parent?: boolean;
}): RecordWriter {
  return new RecordWriter(CLIENT_START)
    .u32("type", E.REC_NETHTTP_CLIENT_START, START_HDR)
    .u32("flags", o.parent ? E.REC_START_F_HAS_PARENT | E.REC_START_F_PARENT_BY_CTX : 0, START_HDR)
    .u32("pid", 7, START_HDR)
    .u32("tid", 8, START_HDR)
    .u64("start_ns", 2_000_000n, START_HDR)
    .u64("goroutine", 0xc000abcdefn, START_HDR)
    .hex("trace_id", TRACE, START_HDR)
    .hex("span_id", SPAN, START_HDR)
    .hex("parent_span_id", o.parent ? PARENT : "0000000000000000", START_HDR)
    .str("method", o.method ?? "GET")
    .str("scheme", o.scheme ?? "http")
    .str("url_host", o.urlHost ?? "api.internal:9000")
    .str("path", o.path ?? "/v1/users")
    .str("req_host", o.reqHost ?? "")
    .u32("url_flags", o.urlFlags ?? 0);
}

function clientEnd(o: { status?: number; errItab?: bigint }): RecordWriter {
  let flags = 0;
  if (o.status !== undefined) flags |= E.NETHTTP_CLIENT_END_F_RESPONSE;
  if (o.errItab !== undefined) flags |= E.NETHTTP_CLIENT_END_F_ERROR;
  return new RecordWriter(CLIENT_END)
    .u32("type", E.REC_NETHTTP_CLIENT_END, END_HDR)
    .u32("flags", flags, END_HDR)
    .u64("end_ns", 2_750_000n, END_HDR)
    .hex("span_id", SPAN, END_HDR)
    .u32("status", o.status ?? 0)
    .u64("err_itab", o.errItab ?? 0n);
}

function startOf(d: Decoded): SpanStart {
  if (d.kind !== "start") throw new Error(`expected start, got ${JSON.stringify(d)}`);
  return d.start;
}
function endOf(d: Decoded): SpanEnd {
  if (d.kind !== "end") throw new Error(`expected end, got ${JSON.stringify(d)}`);
  return d.end;
}
/** A fixed epoch offset, so times are checkable. */
const toEpoch = (mono: bigint): bigint => mono + 1_700_000_000_000_000_000n;

function server(s: RecordWriter, e: RecordWriter): Span {
  return nethttpServer.finish(startOf(s.decode(nethttpServer)), endOf(e.decode(nethttpServer)), toEpoch);
}
function client(s: RecordWriter, e: RecordWriter): Span {
  return nethttpClient.finish(startOf(s.decode(nethttpClient)), endOf(e.decode(nethttpClient)), toEpoch);
}

describe("nethttp records: decode", () => {
  test("server start record", () => {
    const s = startOf(serverStart({ reqFlags: E.NETHTTP_SERVER_F_TLS_KNOWN | E.NETHTTP_SERVER_F_TLS }).decode(nethttpServer));
    expect(s).toEqual({
      probe: "nethttp.server",
      traceId: TRACE,
      spanId: SPAN,
      monoStartNs: 1_000_000n,
      goroutine: 0xc000123456n,
      pid: 4242,
      tid: 4243,
      fields: {
        method: "GET",
        path: "/items/42",
        host: "example.com:8080",
        remoteAddr: "10.1.2.3:55000",
        protoMajor: 1,
        protoMinor: 1,
        tls: 1,
      },
    });
  });

  test("server end record: status and pattern only when their flags say so", () => {
    expect(endOf(serverEnd({ status: 404, pattern: "GET /x" }).decode(nethttpServer))).toEqual({
      probe: "nethttp.server",
      spanId: SPAN,
      monoEndNs: 3_500_000n,
      fields: { status: 404, pattern: "GET /x" },
    });
    const bare = endOf(serverEnd({ status: 404, pattern: "GET /x", flags: 0 }).decode(nethttpServer));
    expect(bare.fields).toEqual({});
  });

  test("client start with parent, and client end with error", () => {
    const s = startOf(clientStart({ parent: true, urlFlags: E.NETHTTP_URL_F_QUERY | E.NETHTTP_URL_F_USER }).decode(nethttpClient));
    expect(s.parentSpanId).toBe(PARENT);
    expect(s.fields).toEqual({
      method: "GET",
      scheme: "http",
      urlHost: "api.internal:9000",
      path: "/v1/users",
      reqHost: "",
      hasQuery: 1,
      hasUser: 1,
      hasPassword: 0,
      opaque: 0,
      parentVia: "context",
    });
    expect(endOf(clientEnd({ errItab: 0x7f00dead0n }).decode(nethttpClient)).fields).toEqual({ errorItab: "0x7f00dead0" });
    expect(endOf(clientEnd({ status: 201 }).decode(nethttpClient)).fields).toEqual({ status: 201 });
  });

  test("a parent id without the HAS_PARENT flag is ignored", () => {
    const w = clientStart({ parent: true }).u32("flags", 0, START_HDR);
    expect(startOf(w.decode(nethttpClient)).parentSpanId).toBeUndefined();
  });

  test("truncated string: real length kept, buffer-sized text, field named", () => {
    const long = "/" + "a".repeat(300);
    const s = startOf(serverStart({ path: long, pathLen: long.length }).decode(nethttpServer));
    expect(s.fields.path).toBe(long.slice(0, 256));
    expect(s.fields.truncated).toBe("path");
  });

  test("short, mistagged and out-of-bounds records are invalid, never thrown", () => {
    const w = serverStart({});
    for (const len of [0, 3, 4, SERVER_START.size - 1]) {
      const d = w.decode(nethttpServer, len);
      expect(d.kind).toBe("invalid");
    }
    expect(clientStart({}).decode(nethttpServer).kind).toBe("invalid");
    expect(serverStart({}).decode(nethttpClient).kind).toBe("invalid");
    expect(nethttpServer.decode(w.view, w.bytes.length - 2, 100).kind).toBe("invalid");
    expect(nethttpServer.decode(w.view, -1, 10).kind).toBe("invalid");
    const junk = new RecordWriter(SERVER_START).u32("type", 0x9999, START_HDR);
    expect(junk.decode(nethttpServer)).toEqual({ kind: "invalid", reason: "nethttp.server: not a server record (tag 0x9999)" });
  });

  test("random bytes never make a decoder throw", () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const bytes = new Uint8Array(1024);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 500; i++) {
      for (let j = 0; j < bytes.length; j++) bytes[j] = rnd() & 0xff;
      // Valid tags half the time, so the field decoders run over garbage too.
      if (i % 2 === 0) view.setUint32(0, 0x0101 + (i % 4), true);
      const len = rnd() % 1024;
      for (const p of PROBES) {
        const d = p.decode(view, 0, len);
        expect(["start", "end", "invalid"]).toContain(d.kind);
      }
    }
  });
});

describe("nethttp server spans", () => {
  const cases: { name: string; start: Parameters<typeof serverStart>[0]; end: Parameters<typeof serverEnd>[0]; want: Partial<Span> }[] = [
    {
      name: "GET with Go 1.22+ pattern incl. method",
      start: {},
      end: { status: 200, pattern: "GET /items/{id}" },
      want: {
        name: "GET /items/{id}",
        status: { code: "unset" },
        attributes: {
          "http.request.method": "GET",
          "url.path": "/items/42",
          "url.scheme": "http",
          "http.route": "/items/{id}",
          "server.address": "example.com",
          "server.port": 8080,
          "network.peer.address": "10.1.2.3",
          "network.peer.port": 55000,
          "network.protocol.version": "1.1",
          "http.response.status_code": 200,
        },
      },
    },
    {
      name: "pattern with host, IPv6 peer, Host without port, HTTP/2, TLS",
      start: { host: "example.com", remote: "[::1]:1234", major: 2, minor: 0, reqFlags: E.NETHTTP_SERVER_F_TLS_KNOWN | E.NETHTTP_SERVER_F_TLS },
      end: { status: 204, pattern: "example.com/static/" },
      want: {
        name: "GET /static/",
        attributes: {
          "http.request.method": "GET",
          "url.path": "/items/42",
          "url.scheme": "https",
          "http.route": "/static/",
          "server.address": "example.com",
          "network.peer.address": "::1",
          "network.peer.port": 1234,
          "network.protocol.version": "2",
          "http.response.status_code": 204,
        },
      },
    },
    {
      name: "5xx is an error; no pattern gives a method-only name; scheme unknown without TLS offset",
      start: { method: "POST", reqFlags: 0 },
      end: { status: 503, pattern: "" },
      want: {
        name: "POST",
        status: { code: "error" },
        attributes: {
          "http.request.method": "POST",
          "url.path": "/items/42",
          "server.address": "example.com",
          "server.port": 8080,
          "network.peer.address": "10.1.2.3",
          "network.peer.port": 55000,
          "network.protocol.version": "1.1",
          "http.response.status_code": 503,
          "error.type": "503",
        },
      },
    },
    {
      name: "4xx is not a server error; non-standard method is _OTHER and named HTTP",
      start: { method: "PROPFIND" },
      end: { status: 404 },
      want: {
        name: "HTTP",
        status: { code: "unset" },
        attributes: {
          "http.request.method": "_OTHER",
          "http.request.method_original": "PROPFIND",
          "url.path": "/items/42",
          "url.scheme": "http",
          "server.address": "example.com",
          "server.port": 8080,
          "network.peer.address": "10.1.2.3",
          "network.peer.port": 55000,
          "network.protocol.version": "1.1",
          "http.response.status_code": 404,
        },
      },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const span = server(serverStart(c.start), serverEnd(c.end));
      if (c.want.name !== undefined) expect(span.name).toBe(c.want.name);
      if (c.want.status !== undefined) expect(span.status).toEqual(c.want.status);
      if (c.want.attributes !== undefined) expect(span.attributes).toEqual(c.want.attributes);
    });
  }

  test("identity, kind, times, scope", () => {
    const span = server(serverStart({}), serverEnd({}));
    expect(span.traceId).toBe(TRACE);
    expect(span.spanId).toBe(SPAN);
    expect(span.parentSpanId).toBeUndefined();
    expect(span.kind).toBe("server");
    expect(span.startTimeUnixNano).toBe(1_700_000_000_001_000_000n);
    expect(span.endTimeUnixNano).toBe(1_700_000_000_003_500_000n);
    expect(span.scope.name).toBe("beetrace/net/http");
  });

  test("status 0 (handler wrote nothing) is the 200 net/http sends; unknown status is omitted", () => {
    expect(server(serverStart({}), serverEnd({ status: 0 })).attributes["http.response.status_code"]).toBe(200);
    const unknown = server(serverStart({}), serverEnd({ status: 0, flags: 0 }));
    expect(unknown.attributes["http.response.status_code"]).toBeUndefined();
    expect(unknown.attributes["http.route"]).toBeUndefined();
  });

  test("truncated path is marked", () => {
    const long = "/" + "p".repeat(400);
    const span = server(serverStart({ path: long, pathLen: long.length }), serverEnd({}));
    expect(span.attributes["url.path"]).toBe(long.slice(0, 256));
    expect(span.attributes["beetrace.truncated"]).toBe("url.path");
  });
});

describe("nethttp client spans", () => {
  test("200 with parent: child of the server span, same trace", () => {
    const span = client(clientStart({ parent: true }), clientEnd({ status: 200 }));
    expect(span).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      parentSpanId: PARENT,
      name: "GET",
      kind: "client",
      startTimeUnixNano: 1_700_000_000_002_000_000n,
      endTimeUnixNano: 1_700_000_000_002_750_000n,
      attributes: {
        "http.request.method": "GET",
        "url.full": "http://api.internal:9000/v1/users",
        "server.address": "api.internal",
        "server.port": 9000,
        "http.response.status_code": 200,
      },
      status: { code: "unset" },
      scope: { name: "beetrace/net/http", version: expect.any(String) },
    });
  });

  const cases: {
    name: string;
    start: Parameters<typeof clientStart>[0];
    end: Parameters<typeof clientEnd>[0];
    url: string;
    address?: string;
    port?: number;
    status: Span["status"];
    errorType?: string;
  }[] = [
    { name: "404 is a client error", start: {}, end: { status: 404 }, url: "http://api.internal:9000/v1/users", address: "api.internal", port: 9000, status: { code: "error" }, errorType: "404" },
    {
      name: "transport error",
      start: { scheme: "https", urlHost: "pay.example" },
      end: { errItab: 0x55aa00n },
      url: "https://pay.example/v1/users",
      address: "pay.example",
      port: 443,
      status: { code: "error", message: "transport error" },
      errorType: "_OTHER",
    },
    {
      name: "userinfo with password and query are redacted; default port 80",
      start: { urlHost: "h.example", path: "/a b/%x", urlFlags: E.NETHTTP_URL_F_USER | E.NETHTTP_URL_F_PASSWORD | E.NETHTTP_URL_F_QUERY },
      end: { status: 302 },
      url: "http://REDACTED:REDACTED@h.example/a%20b/%25x?REDACTED",
      address: "h.example",
      port: 80,
      status: { code: "unset" },
    },
    {
      name: "username only; IPv6 host",
      start: { urlHost: "[2001:db8::1]:8443", scheme: "https", urlFlags: E.NETHTTP_URL_F_USER },
      end: { status: 500 },
      url: "https://REDACTED@[2001:db8::1]:8443/v1/users",
      address: "2001:db8::1",
      port: 8443,
      status: { code: "error" },
      errorType: "500",
    },
    {
      name: "URL.Host empty: Request.Host is used",
      start: { urlHost: "", reqHost: "virt.example" },
      end: { status: 200 },
      url: "http://virt.example/v1/users",
      address: "virt.example",
      port: 80,
      status: { code: "unset" },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const span = client(clientStart(c.start), clientEnd(c.end));
      expect(span.attributes["url.full"]).toBe(c.url);
      expect(span.attributes["server.address"]).toBe(c.address!);
      expect(span.attributes["server.port"]).toBe(c.port!);
      expect(span.status).toEqual(c.status);
      expect(span.attributes["error.type"]).toBe(c.errorType!);
    });
  }

  test("unknown method on the client", () => {
    const span = client(clientStart({ method: "get" }), clientEnd({ status: 200 }));
    expect(span.name).toBe("HTTP");
    expect(span.attributes["http.request.method"]).toBe("_OTHER");
    expect(span.attributes["http.request.method_original"]).toBe("get");
  });
});

describe("nethttp manifests", () => {
  const ctx = (goVersion: string, known: string[], itab?: bigint): FlagContext => ({
    goVersion,
    offset: (f) => (known.includes(f) ? 8 : undefined),
    address: () => itab,
  });

  test("pattern_mode follows the Go version and which offsets are known", () => {
    const all = ["net/http.Request.Pattern", "net/http.Request.pat", "net/http.pattern.str"];
    expect(nethttpServer.flags(ctx("go1.24.2", all))).toEqual({ pattern_mode: 2, rw_itab_addr: 0n });
    expect(nethttpServer.flags(ctx("go1.23rc1", all)).pattern_mode).toBe(2);
    expect(nethttpServer.flags(ctx("go1.22.5", all)).pattern_mode).toBe(1);
    expect(nethttpServer.flags(ctx("go1.21.13", all)).pattern_mode).toBe(0);
    // Offsets unknown: switched off rather than guessed.
    expect(nethttpServer.flags(ctx("go1.24.2", [])).pattern_mode).toBe(0);
    expect(nethttpServer.flags(ctx("go1.22.5", ["net/http.Request.pat"])).pattern_mode).toBe(0);
    expect(nethttpServer.flags(ctx("go1.24.2", all, 0x4a0000n)).rw_itab_addr).toBe(0x4a0000n);
  });

  test("each const is declared once per probe and every field has a why", () => {
    for (const p of PROBES) {
      const consts = p.fields.map((f) => f.const);
      expect(new Set(consts).size).toBe(consts.length);
      for (const f of p.fields) expect(f.why.length).toBeGreaterThan(0);
    }
    // Fields shared by both probes are the same declaration object.
    const shared = nethttpServer.fields.filter((f) => nethttpClient.fields.includes(f)).map((f) => f.field);
    expect(shared).toEqual(["net/http.Request.Method", "net/http.Request.URL", "net/url.URL.Path", "net/http.Request.Host", "net/http.Request.ctx"]);
  });

  test("HTTP/2 writer status: both fields optional (no status rather than no probe), consts the BPF object reads", () => {
    const h2 = nethttpServer.fields.filter((f) => f.field.includes("http2"));
    expect(h2.map((f) => [f.const, f.field, f.required])).toEqual([
      ["h2_rw_rws_off", "net/http.http2responseWriter.rws", false],
      ["h2_rws_status_off", "net/http.http2responseWriterState.status", false],
    ]);
    // HTTP/2 spans take the status like HTTP/1 ones: 0 → 200, 5xx → error.
    const ok = server(serverStart({ major: 2, minor: 0 }), serverEnd({ status: 0 }));
    expect([ok.attributes["network.protocol.version"], ok.attributes["http.response.status_code"], ok.status]).toEqual(["2", 200, { code: "unset" }]);
    const bad = server(serverStart({ major: 2, minor: 0 }), serverEnd({ status: 500 }));
    expect([bad.attributes["http.response.status_code"], bad.attributes["error.type"], bad.status]).toEqual([500, "500", { code: "error" }]);
  });

  test("registry routes each record tag to its probe and lists symbols/fields", () => {
    expect(probeForRecordType(E.REC_NETHTTP_SERVER_START)).toBe(nethttpServer);
    expect(probeForRecordType(E.REC_NETHTTP_CLIENT_END)).toBe(nethttpClient);
    expect(probeForRecordType(0x9999)).toBeUndefined();
    expect(probeSymbols()).toEqual(["net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip"]);
    expect(probeFields()).toContain("net/http.response.status");
    expect(new Set(probeFields()).size).toBe(probeFields().length);
  });
});

describe("nethttp semconv helpers", () => {
  test.each([
    ["example.com", { host: "example.com" }],
    ["example.com:80", { host: "example.com", port: 80 }],
    ["[::1]:1234", { host: "::1", port: 1234 }],
    ["[fe80::1%eth0]", { host: "fe80::1%eth0" }],
    ["::1", { host: "::1" }],
    ["host:notaport", { host: "host" }],
    ["host:99999", { host: "host" }],
  ] as const)("splitHostPort(%p)", (input, want) => {
    expect(splitHostPort(input)).toEqual(want);
  });
  test("splitHostPort of empty is undefined", () => expect(splitHostPort("")).toBeUndefined());

  test.each([
    ["GET /items/{id}", "/items/{id}"],
    ["/items/", "/items/"],
    ["POST\texample.com/x", "/x"],
    ["example.com/", "/"],
    ["", undefined],
  ] as const)("routeFromPattern(%p)", (p, want) => {
    expect(routeFromPattern(p)).toBe(want);
  });

  test("escapePath", () => {
    expect(escapePath("/a b/ü/100%")).toBe("/a%20b/%C3%BC/100%25");
    expect(escapePath("/ok/-._~!$&'()*+,;=:@")).toBe("/ok/-._~!$&'()*+,;=:@");
  });
});
