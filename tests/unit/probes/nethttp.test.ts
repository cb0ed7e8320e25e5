/**
 * @module tests/unit/probes/nethttp — span building of the net/http probes and the record
 * decoder, from records written through the layouts generated from BTF (record-writer.ts).
 */
import { describe, expect, test } from "bun:test";
import { nethttpServer } from "../../../src/probes/nethttp/server.ts";
import { nethttpClient } from "../../../src/probes/nethttp/client.ts";
import { ENUMERATORS as E } from "../../../src/probes/nethttp/nethttp.gen.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { builtinRecordSchema, SpanDecoder } from "../../../src/probes/decode.ts";
import { SPAN_HEADER_SIZE, type RecordLayout, type RecordSchema } from "../../../src/probes/record.ts";
import { PROBES, probeFields, probeSymbols } from "../../../src/probes/registry.ts";
import { goAtLeast, type FlagContext } from "../../../src/probes/probe.ts";
import type { Span } from "../../../src/spans/model.ts";
import { escapePath, routeFromPattern, splitHostPort } from "../../../src/probes/nethttp/semconv.ts";
import { RecordWriter, type RecordInput } from "./record-writer.ts";

const SERVER = recordLayoutOf("nethttp", "rec_nethttp_server");
const CLIENT = recordLayoutOf("nethttp", "rec_nethttp_client");
const TRACE = "0102030405060708090a0b0c0d0e0f10";
const SPAN = "a1a2a3a4a5a6a7a8";
const PARENT = "b1b2b3b4b5b6b7b8";
const NO_PARENT = "0000000000000000";
/** A fixed epoch offset, so times are checkable. */
const EPOCH = 1_700_000_000_000_000_000n;
const toEpoch = (boot: bigint): bigint => boot + EPOCH;

interface ServerOpts {
  method?: string;
  path?: string;
  host?: string;
  remote?: string;
  pattern?: string;
  major?: number;
  minor?: number;
  status?: number;
  /** probe and common flags; default STATUS | PATTERN | TLS_KNOWN */
  flags?: number;
  truncated?: number;
  parent?: string;
  panic?: string;
}

function serverInput(o: ServerOpts = {}): RecordInput {
  return {
    fields: {
      type: E.REC_NETHTTP_SERVER,
      flags: o.flags ?? E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN | E.NETHTTP_SERVER_F_TLS_KNOWN,
      truncated: o.truncated ?? 0,
      start_ns: 1_000_000n,
      end_ns: 3_500_000n,
      status: o.status ?? 200,
      proto_major: o.major ?? 1,
      proto_minor: o.minor ?? 1,
    },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ?? NO_PARENT },
    strings: {
      method: o.method ?? "GET",
      path: o.path ?? "/items/42",
      host: o.host ?? "example.com:8080",
      remote: o.remote ?? "10.1.2.3:55000",
      pattern: o.pattern ?? "",
      panic: o.panic ?? "",
    },
  };
}

interface ClientOpts {
  method?: string;
  scheme?: string;
  urlHost?: string;
  path?: string;
  reqHost?: string;
  /** URL flags (QUERY, USER, PASSWORD, OPAQUE) */
  urlFlags?: number;
  parent?: boolean;
  status?: number;
  /** a transport error: enum go_err_cause and the errno it found */
  err?: { cause: number; errno?: number };
}

function clientInput(o: ClientOpts = {}): RecordInput {
  let flags = o.urlFlags ?? 0;
  if (o.parent) flags |= E.REC_SPAN_F_HAS_PARENT | E.REC_SPAN_F_PARENT_BY_CTX;
  if (o.status !== undefined) flags |= E.NETHTTP_CLIENT_F_RESPONSE;
  if (o.err !== undefined) flags |= E.NETHTTP_CLIENT_F_ERROR;
  return {
    fields: { type: E.REC_NETHTTP_CLIENT, flags, start_ns: 2_000_000n, end_ns: 2_750_000n, status: o.status ?? 0, err_cause: o.err?.cause ?? 0, err_errno: o.err?.errno ?? 0 },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: o.parent ? PARENT : NO_PARENT },
    strings: {
      method: o.method ?? "GET",
      scheme: o.scheme ?? "http",
      url_host: o.urlHost ?? "api.internal:9000",
      path: o.path ?? "/v1/users",
      req_host: o.reqHost ?? "",
    },
  };
}

/** Junk before and after the record: a decoder must read neither. */
const JUNK = 0xee;
const BEFORE = 24;
const AFTER = 40;

/** Writes the record between junk bytes and decodes it at its offset, as the session does over the ring. */
function decodeWith(decoder: SpanDecoder, layout: RecordLayout, input: RecordInput): Span | undefined {
  const w = new RecordWriter(layout);
  const size = w.size(input);
  const buf = new Uint8Array(BEFORE + size + AFTER).fill(JUNK);
  w.write(input, buf, BEFORE);
  // The ring hands over the submitted length; junk after it belongs to the next record.
  return decoder.decodeAt(buf, new DataView(buf.buffer), BEFORE, size + AFTER, { toEpoch });
}

function mustDecode(layout: RecordLayout, input: RecordInput, decoder = new SpanDecoder()): Span {
  const span = decodeWith(decoder, layout, input);
  if (span === undefined) throw new Error(`record refused: ${decoder.firstInvalid}`);
  expect(decoder.invalid).toBe(0);
  return span;
}
const server = (o: ServerOpts = {}): Span => mustDecode(SERVER, serverInput(o));
const client = (o: ClientOpts = {}): Span => mustDecode(CLIENT, clientInput(o));

/** String i of a layout's packing order: its bit in rec_span.truncated. */
const truncBit = (l: RecordLayout, name: string): number => {
  const i = l.strings.indexOf(name);
  if (i < 0) throw new Error(`${l.struct} has no string ${name}`);
  return 1 << i;
};

describe("nethttp server spans", () => {
  const cases: { name: string; o: ServerOpts; want: Partial<Span> }[] = [
    {
      name: "GET with Go 1.22+ pattern incl. method",
      o: { status: 200, pattern: "GET /items/{id}" },
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
      o: {
        host: "example.com",
        remote: "[::1]:1234",
        major: 2,
        minor: 0,
        status: 204,
        pattern: "example.com/static/",
        flags: E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN | E.NETHTTP_SERVER_F_TLS_KNOWN | E.NETHTTP_SERVER_F_TLS,
      },
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
      o: { method: "POST", status: 503, pattern: "", flags: E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN },
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
      o: { method: "PROPFIND", status: 404 },
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
      const span = server(c.o);
      if (c.want.name !== undefined) expect(span.name).toBe(c.want.name);
      if (c.want.status !== undefined) expect(span.status).toEqual(c.want.status);
      if (c.want.attributes !== undefined) expect(span.attributes).toEqual(c.want.attributes);
    });
  }

  test("identity, kind, times, scope", () => {
    const span = server();
    expect(span.traceId).toBe(TRACE);
    expect(span.spanId).toBe(SPAN);
    expect(span.parentSpanId).toBeUndefined();
    expect(span.kind).toBe("server");
    expect(span.startTimeUnixNano).toBe(1_700_000_000_001_000_000n);
    expect(span.endTimeUnixNano).toBe(1_700_000_000_003_500_000n);
    expect(span.scope.name).toBe("beetrace/net/http");
  });

  test("status 0 (handler wrote nothing) is the 200 net/http sends; unknown status and pattern are omitted", () => {
    expect(server({ status: 0 }).attributes["http.response.status_code"]).toBe(200);
    const unknown = server({ status: 0, pattern: "GET /x", flags: E.NETHTTP_SERVER_F_TLS_KNOWN });
    expect(unknown.attributes["http.response.status_code"]).toBeUndefined();
    expect(unknown.attributes["http.route"]).toBeUndefined();
    expect(unknown.name).toBe("GET");
  });

  test("HTTP/2 status: 0 → 200, 5xx → error, like HTTP/1", () => {
    const ok = server({ major: 2, minor: 0, status: 0 });
    expect([ok.attributes["network.protocol.version"], ok.attributes["http.response.status_code"], ok.status]).toEqual(["2", 200, { code: "unset" }]);
    const bad = server({ major: 2, minor: 0, status: 500 });
    expect([bad.attributes["http.response.status_code"], bad.attributes["error.type"], bad.status]).toEqual([500, "500", { code: "error" }]);
  });

  test("hijacked: no status (whatever the handler wrote on the raw connection is unknown), marked", () => {
    const base = E.NETHTTP_SERVER_F_PATTERN | E.NETHTTP_SERVER_F_TLS_KNOWN | E.NETHTTP_SERVER_F_HIJACKED;
    for (const flags of [base, base | E.NETHTTP_SERVER_F_STATUS]) {
      const span = server({ flags, status: 0, pattern: "/ws" });
      expect(span.attributes["http.response.status_code"]).toBeUndefined();
      expect(span.attributes["beetrace.hijacked"]).toBe(true);
      expect(span.attributes["http.route"]).toBe("/ws");
      expect(span.status).toEqual({ code: "unset" });
    }
    // A status written before Hijack (e.g. 101 by the handler's own code path) is still reported.
    const switched = server({ flags: base | E.NETHTTP_SERVER_F_STATUS, status: 101 });
    expect(switched.attributes["http.response.status_code"]).toBe(101);
    expect(server().attributes["beetrace.hijacked"]).toBeUndefined();
  });

  test("END_AT_RET (ended at a RET, no end marker) changes nothing in the span", () => {
    const flags = E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN | E.NETHTTP_SERVER_F_TLS_KNOWN;
    const plain = server({ flags, pattern: "GET /items/{id}" });
    expect(server({ flags: flags | E.REC_SPAN_F_END_AT_RET, pattern: "GET /items/{id}" })).toEqual(plain);
  });

  test("truncated strings are marked by their attribute, in packing order", () => {
    const long = "/" + "p".repeat(254); // what BPF keeps of a longer path: NETHTTP_PATH_CAP (255) bytes
    const span = server({ path: long, truncated: truncBit(SERVER, "path") });
    expect(span.attributes["url.path"]).toBe(long);
    expect(span.attributes["beetrace.truncated"]).toBe("url.path");
    const two = server({ pattern: "GET /a", truncated: truncBit(SERVER, "host") | truncBit(SERVER, "pattern") });
    expect(two.attributes["beetrace.truncated"]).toBe("server.address,http.route");
    expect(server().attributes["beetrace.truncated"]).toBeUndefined();
  });

  test("read error is marked; the fields that were read are kept", () => {
    const span = server({ flags: E.NETHTTP_SERVER_F_STATUS | E.REC_SPAN_F_READ_ERROR, remote: "" });
    expect(span.attributes["beetrace.read_error"]).toBe(true);
    expect(span.attributes["network.peer.address"]).toBeUndefined();
    expect(span.attributes["url.path"]).toBe("/items/42");
    expect(server().attributes["beetrace.read_error"]).toBeUndefined();
  });

  test("parent id only with HAS_PARENT (and never an all-zero one)", () => {
    expect(server({ parent: PARENT }).parentSpanId).toBeUndefined();
    const flags = E.NETHTTP_SERVER_F_STATUS | E.REC_SPAN_F_HAS_PARENT;
    expect(server({ parent: PARENT, flags }).parentSpanId).toBe(PARENT);
    expect(server({ parent: NO_PARENT, flags }).parentSpanId).toBeUndefined();
  });
});

describe("nethttp client spans", () => {
  test("200 with parent: child of the server span, same trace", () => {
    expect(client({ parent: true, status: 200 })).toEqual({
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

  const cases: { name: string; o: ClientOpts; url: string; address?: string; port?: number; status: Span["status"]; errorType?: string; code?: number }[] = [
    { name: "404 is a client error", o: { status: 404 }, url: "http://api.internal:9000/v1/users", address: "api.internal", port: 9000, status: { code: "error" }, errorType: "404", code: 404 },
    {
      name: "transport error of a type outside the walk: no status, _OTHER error type",
      o: { scheme: "https", urlHost: "pay.example", err: { cause: E.GO_ERR_OTHER } },
      url: "https://pay.example/v1/users",
      address: "pay.example",
      port: 443,
      status: { code: "error", message: "transport error" },
      errorType: "_OTHER",
    },
    ...(
      [
        [{ cause: E.GO_ERR_ERRNO, errno: 111 }, "connection_refused", "connection refused"],
        [{ cause: E.GO_ERR_ERRNO, errno: 104 }, "connection_reset", "connection reset by peer"],
        [{ cause: E.GO_ERR_ERRNO, errno: 9999 }, "_OTHER", "errno 9999"],
        [{ cause: E.GO_ERR_TIMEOUT }, "timeout", "deadline exceeded"],
        [{ cause: E.GO_ERR_DNS }, "name_resolution_error", "DNS lookup failed"],
        [{ cause: E.GO_ERR_TLS }, "tls_certificate_invalid", "TLS certificate verification failed"],
      ] as const
    ).map(([err, errorType, message]) => ({
      name: `transport error classified in BPF: ${errorType} (${message})`,
      o: { urlHost: "api.internal:9000", err },
      url: "http://api.internal:9000/v1/users",
      address: "api.internal",
      port: 9000,
      status: { code: "error" as const, message },
      errorType,
    })),
    {
      name: "userinfo with password and query are redacted; default port 80",
      o: { urlHost: "h.example", path: "/a b/%x", urlFlags: E.NETHTTP_CLIENT_F_USER | E.NETHTTP_CLIENT_F_PASSWORD | E.NETHTTP_CLIENT_F_QUERY, status: 302 },
      url: "http://REDACTED:REDACTED@h.example/a%20b/%25x?REDACTED",
      address: "h.example",
      port: 80,
      status: { code: "unset" },
      code: 302,
    },
    {
      name: "username only; IPv6 host; 5xx is a client error",
      o: { urlHost: "[2001:db8::1]:8443", scheme: "https", urlFlags: E.NETHTTP_CLIENT_F_USER, status: 500 },
      url: "https://REDACTED@[2001:db8::1]:8443/v1/users",
      address: "2001:db8::1",
      port: 8443,
      status: { code: "error" },
      errorType: "500",
      code: 500,
    },
    {
      name: "opaque URL: the path is not shown",
      o: { urlHost: "o.example", path: "/ignored", urlFlags: E.NETHTTP_CLIENT_F_OPAQUE, status: 200 },
      url: "http://o.example",
      address: "o.example",
      port: 80,
      status: { code: "unset" },
      code: 200,
    },
    {
      name: "URL.Host empty: Request.Host is used",
      o: { urlHost: "", reqHost: "virt.example", status: 200 },
      url: "http://virt.example/v1/users",
      address: "virt.example",
      port: 80,
      status: { code: "unset" },
      code: 200,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const span = client(c.o);
      expect(span.attributes["url.full"]).toBe(c.url);
      expect(span.attributes["server.address"]).toBe(c.address!);
      expect(span.attributes["server.port"]).toBe(c.port!);
      expect(span.status).toEqual(c.status);
      expect(span.attributes["error.type"]).toBe(c.errorType!);
      expect(span.attributes["http.response.status_code"]).toBe(c.code!);
    });
  }

  test("unknown method on the client", () => {
    const span = client({ method: "get", status: 200 });
    expect(span.name).toBe("HTTP");
    expect(span.attributes["http.request.method"]).toBe("_OTHER");
    expect(span.attributes["http.request.method_original"]).toBe("get");
  });

  test("a parent id without the HAS_PARENT flag is ignored", () => {
    const input = clientInput({ status: 200 });
    input.hex!.parent_span_id = PARENT;
    expect(mustDecode(CLIENT, input).parentSpanId).toBeUndefined();
  });
});

describe("SpanDecoder", () => {
  test("each record type goes to its probe; both layouts come from the generated bindings", () => {
    const schema = builtinRecordSchema();
    expect(schema.types[String(E.REC_NETHTTP_SERVER)]).toEqual(SERVER);
    expect(schema.types[String(E.REC_NETHTTP_CLIENT)]).toEqual(CLIENT);
    expect(SERVER.strings).toEqual(["method", "path", "host", "remote", "pattern", "panic", "tracestate"]);
    expect(CLIENT.strings).toEqual(["method", "scheme", "url_host", "path", "req_host"]);
    expect(server().kind).toBe("server");
    expect(client({ status: 200 }).kind).toBe("client");
  });

  test("decode() of a record alone", () => {
    const d = new SpanDecoder();
    const span = d.decode(new RecordWriter(SERVER).bytes(serverInput({ pattern: "/x" })), toEpoch);
    expect(span?.name).toBe("GET /x");
  });

  test("bad sizes and unknown types are counted as invalid, never thrown", () => {
    const d = new SpanDecoder();
    const w = new RecordWriter(SERVER);
    const input = serverInput();
    const good = w.bytes(input);
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const bad: [string, Uint8Array, number][] = [];
    // size below the common header
    const small = good.slice();
    view(small).setUint16(w.offsetOf("size"), SPAN_HEADER_SIZE - 1, true);
    bad.push(["size < header", small, small.length]);
    // size larger than what the ring handed over
    bad.push(["size > length", good, good.length - 1]);
    // a size that covers the header but not the fixed fields
    const short = good.slice();
    view(short).setUint16(w.offsetOf("size"), SPAN_HEADER_SIZE, true);
    bad.push(["size < fixed part", short, short.length]);
    // unknown tag (a format-1 start record's tag, never reused)
    const tagged = good.slice();
    view(tagged).setUint16(w.offsetOf("type"), 0x0101, true);
    bad.push(["unknown type", tagged, tagged.length]);
    // fewer bytes than a size field
    bad.push(["3 bytes", good.subarray(0, 3), 3]);
    for (const [why, b, len] of bad) {
      expect([why, d.decodeAt(b, view(b), 0, len, { toEpoch })]).toEqual([why, undefined]);
    }
    expect(d.invalid).toBe(bad.length);
    expect(d.firstInvalid).toContain("declares size");
    // Offsets outside the buffer: invalid as well.
    expect(d.decodeAt(good, view(good), good.length - 2, 100, { toEpoch })).toBeUndefined();
    expect(d.decodeAt(good, view(good), -1, 10, { toEpoch })).toBeUndefined();
    expect(d.invalid).toBe(bad.length + 2);
    // The decoder goes on decoding good records.
    expect(d.decode(good, toEpoch)?.kind).toBe("server");
  });

  test("strings that overrun the record's size make it invalid", () => {
    const d = new SpanDecoder();
    const w = new RecordWriter(SERVER);
    const input = serverInput();
    const size = w.size(input);
    // path_len claims 10 bytes more than the record holds (the record has room after it: junk).
    const span = decodeWith(d, SERVER, { ...input, fields: { ...input.fields, size, path_len: 9 + 10 } });
    expect(span).toBeUndefined();
    expect(d.invalid).toBe(1);
    expect(d.firstInvalid).toContain("strings need");
  });

  test("a file whose layout lacks a field decodes with that field empty", () => {
    // An older rec_nethttp_server: no remote string, no proto fields. Offsets are derived from
    // the current layout by taking fields out, as an older build's BTF would have them.
    const fields = { ...SERVER.fields };
    delete fields.remote_len;
    delete fields.proto_major;
    delete fields.proto_minor;
    const older: RecordLayout = { ...SERVER, fields, strings: SERVER.strings.filter((s) => s !== "remote") };
    const schema: RecordSchema = { ...builtinRecordSchema(), types: { ...builtinRecordSchema().types, [String(E.REC_NETHTTP_SERVER)]: older } };
    const input = serverInput({ pattern: "GET /items/{id}" });
    delete input.strings!.remote;
    delete input.fields!.proto_major;
    delete input.fields!.proto_minor;
    const span = mustDecode(older, input, new SpanDecoder(schema));
    expect(span.name).toBe("GET /items/{id}");
    expect(span.attributes).toEqual({
      "http.request.method": "GET",
      "url.path": "/items/42",
      "url.scheme": "http",
      "http.route": "/items/{id}",
      "server.address": "example.com",
      "server.port": 8080,
      "http.response.status_code": 200,
    });
  });

  test("random bytes never make the decoder throw", () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const bytes = new Uint8Array(1024);
    const view = new DataView(bytes.buffer);
    const d = new SpanDecoder();
    const tags = PROBES.map((p) => p.record.type);
    let decoded = 0;
    for (let i = 0; i < 1000; i++) {
      for (let j = 0; j < bytes.length; j++) bytes[j] = rnd() & 0xff;
      // Valid tags and plausible sizes most of the time, so the probe decoders run over garbage too.
      if (i % 4 !== 0) {
        view.setUint16(0, tags[i % tags.length]!, true);
        view.setUint16(2, SPAN_HEADER_SIZE + (rnd() % 400), true);
        // Short strings, so some records pass the layout check.
        for (const l of [SERVER, CLIENT]) for (const s of l.strings) view.setUint16(l.fields[`${s}_len`]![0], rnd() % 24, true);
      }
      const len = rnd() % 1024;
      const span = d.decodeAt(bytes, view, 0, len, { toEpoch });
      if (span !== undefined) decoded++;
    }
    expect(d.invalid + decoded).toBe(1000);
    expect(decoded).toBeGreaterThan(0);
  });
});

describe("nethttp manifests", () => {
  const ctx = (goVersion: string, known: string[]): FlagContext => ({
    goVersion,
    offset: (f) => (known.includes(f) ? 8 : undefined),
  });

  test("map_mode: Swiss tables from Go 1.24, buckets before, and only with every offset of the layout and Request.Header", () => {
    const swiss = ["net/http.Request.Header", "internal/runtime/maps.Map.dirPtr", "internal/runtime/maps.Map.dirLen", "internal/runtime/maps.table.groups", "internal/runtime/maps.groupsReference.data", "internal/runtime/maps.groupsReference.lengthMask"];
    const buckets = ["net/http.Request.Header", "runtime.hmap.B", "runtime.hmap.buckets"];
    expect(nethttpServer.flags(ctx("go1.26.8", swiss)).map_mode).toBe(E.GO_MAP_SWISS);
    expect(nethttpServer.flags(ctx("go1.23.12", buckets)).map_mode).toBe(E.GO_MAP_BUCKETS);
    expect(nethttpServer.flags(ctx("go1.26.8", buckets)).map_mode).toBe(E.GO_MAP_NONE);
    expect(nethttpServer.flags(ctx("go1.23.12", swiss)).map_mode).toBe(E.GO_MAP_NONE);
    expect(nethttpServer.flags(ctx("go1.26.8", swiss.slice(1))).map_mode).toBe(E.GO_MAP_NONE);
    expect(nethttpServer.flags(ctx("go1.17.13", buckets.slice(0, 2))).map_mode).toBe(E.GO_MAP_NONE);
  });

  test("pattern_mode follows the Go version and which offsets are known", () => {
    const all = ["net/http.Request.Pattern", "net/http.Request.pat", "net/http.pattern.str"];
    expect(nethttpServer.flags(ctx("go1.24.2", all))).toEqual({ pattern_mode: E.NETHTTP_PATTERN_FIELD, map_mode: E.GO_MAP_NONE, nameoff_server_handler: -1, nameoff_http1_response: -1 });
    // The writer and handler type names the HTTP/2 entries compare (-1: type data not read).
    const named = nethttpServer.flags({ ...ctx("go1.27.4", all), typeNameOff: (n) => (n === "http.serverHandler" ? 0x100 : n === "*http.response" ? 0x200 : undefined) });
    expect([named.nameoff_server_handler, named.nameoff_http1_response]).toEqual([0x100, 0x200]);
    expect(nethttpServer.flags(ctx("go1.23rc1", all)).pattern_mode).toBe(E.NETHTTP_PATTERN_FIELD);
    expect(nethttpServer.flags(ctx("go1.22.5", all)).pattern_mode).toBe(E.NETHTTP_PATTERN_PAT_STR);
    expect(nethttpServer.flags(ctx("go1.21.13", all)).pattern_mode).toBe(E.NETHTTP_PATTERN_NONE);
    // Offsets unknown: switched off rather than guessed.
    expect(nethttpServer.flags(ctx("go1.24.2", [])).pattern_mode).toBe(E.NETHTTP_PATTERN_NONE);
    expect(nethttpServer.flags(ctx("go1.22.5", ["net/http.Request.pat"])).pattern_mode).toBe(E.NETHTTP_PATTERN_NONE);
    // The error walk's type name offsets: -1 (never matches) when the binary's type data is not read.
    const noTypes = nethttpClient.flags(ctx("go1.24.2", all));
    expect(Object.keys(noTypes).sort()).toEqual(["nameoff_context_deadline", "nameoff_net_dns_error", "nameoff_net_op_error", "nameoff_os_syscall_error", "nameoff_poll_deadline", "nameoff_syscall_errno", "nameoff_tls_verification"]);
    expect(Object.values(noTypes).every((v) => v === -1)).toBe(true);
    const withTypes = nethttpClient.flags({ ...ctx("go1.24.2", all), typeNameOff: (n) => (n === "*net.OpError" ? 0x2ee0 : n === "syscall.Errno" ? 0x38e0 : undefined) });
    expect([withTypes.nameoff_net_op_error, withTypes.nameoff_syscall_errno, withTypes.nameoff_net_dns_error]).toEqual([0x2ee0, 0x38e0, -1]);
  });

  test("each const is declared once per probe and Go version range, and every field has a why", () => {
    for (const p of PROBES) {
      const byConst = new Map<string, typeof p.fields>();
      for (const f of p.fields) byConst.set(f.const, [...(byConst.get(f.const) ?? []), f]);
      for (const [c, decls] of byConst) {
        if (decls.length === 1) continue;
        // Two fields may fill one const only for disjoint Go versions (a type that moved).
        expect({ c, n: decls.length }).toEqual({ c, n: 2 });
        const [a, b] = decls as [(typeof decls)[0], (typeof decls)[0]];
        expect({ c, aMax: a.goMax !== undefined, bMin: b.goMin !== undefined, ordered: goAtLeast(b.goMin ?? "0", a.goMax ?? "99") && a.goMax !== b.goMin }).toEqual({ c, aMax: true, bMin: true, ordered: true });
      }
      for (const f of p.fields) expect(f.why.length).toBeGreaterThan(0);
    }
    // Fields shared by both probes are the same declaration object.
    const shared = nethttpServer.fields.filter((f) => nethttpClient.fields.includes(f)).map((f) => f.field);
    expect(shared).toEqual(["net/http.Request.Method", "net/http.Request.URL", "net/url.URL.Path", "net/http.Request.Host", "net/http.Request.ctx"]);
  });

  test("HTTP/2 writer status and stream id fields are optional (no status or stream id rather than no probe)", () => {
    const h2 = nethttpServer.fields.filter((f) => f.field.includes("http2") && !f.const.startsWith("srq_"));
    // Go 1.27's ServerRequest (spans begun at http2Handler.ServeHTTP): optional too.
    expect(nethttpServer.fields.filter((f) => f.const.startsWith("srq_")).map((f) => [f.field.replace(/.*\./, ""), f.required, f.goMin])).toEqual(
      ["Context", "ProtoMajor", "ProtoMinor", "Method", "URL", "Header", "Host", "RemoteAddr", "TLS"].map((f) => [f, false, "1.27"]),
    );
    expect(h2.map((f) => [f.const, f.field, f.required])).toEqual([
      ["h2_rw_rws_off", "net/http.http2responseWriter.rws", false],
      ["h2_rws_status_off", "net/http.http2responseWriterState.status", false],
      ["h2_rw_rws_off", "net/http/internal/http2.responseWriter.rws", false],
      ["h2_rws_status_off", "net/http/internal/http2.responseWriterState.status", false],
      ["h2_rws_stream_off", "net/http.http2responseWriterState.stream", false],
      ["h2_stream_id_off", "net/http.http2stream.id", false],
      ["h2_rws_stream_off", "net/http/internal/http2.responseWriterState.stream", false],
      ["h2_stream_id_off", "net/http/internal/http2.stream.id", false],
      ["xnet_rw_rws_off", "golang.org/x/net/http2.responseWriter.rws", false],
      ["xnet_rws_status_off", "golang.org/x/net/http2.responseWriterState.status", false],
      ["xnet_rws_stream_off", "golang.org/x/net/http2.responseWriterState.stream", false],
      ["xnet_stream_id_off", "golang.org/x/net/http2.stream.id", false],
    ]);
  });

  test("registry: one record tag per probe; symbols include the end markers; fields deduplicated", () => {
    expect(PROBES.filter((p) => p.object.name === "nethttp").map((p) => [p.id, p.record])).toEqual([
      ["nethttp.server", { type: E.REC_NETHTTP_SERVER, struct: "rec_nethttp_server" }],
      ["nethttp.client", { type: E.REC_NETHTTP_CLIENT, struct: "rec_nethttp_client" }],
    ]);
    const tags = PROBES.map((p) => p.record.type);
    expect(new Set(tags).size).toBe(tags.length);
    const syms = probeSymbols();
    for (const s of ["net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip", "net/http.(*response).finishRequest", "net/http.(*response).Hijack"]) {
      expect(syms).toContain(s);
    }
    expect(new Set(syms).size).toBe(syms.length);
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

describe("guessed offsets", () => {
  test("every span of a probe whose offsets were guessed names those fields; other probes' spans do not", () => {
    const guessed = ["net/http.http2responseWriterState.status", "net/http.response.status"];
    const schema: RecordSchema = { ...builtinRecordSchema(), guessedOffsets: { "nethttp.server": guessed } };
    const d = new SpanDecoder(schema);
    const s = mustDecode(SERVER, serverInput(), d);
    expect(s.attributes["beetrace.guessed_offsets"]).toBe(guessed.join(","));
    const c = mustDecode(CLIENT, clientInput(), d);
    expect(c.attributes["beetrace.guessed_offsets"]).toBeUndefined();
    expect(server().attributes["beetrace.guessed_offsets"]).toBeUndefined();
  });
});

describe("panicking handlers", () => {
  const base = E.NETHTTP_SERVER_F_STATUS | E.NETHTTP_SERVER_F_PATTERN;
  test("PANIC with the value's text: Error status, error.type panic, an exception event at the end; no status code", () => {
    const s = server({ flags: base | E.NETHTTP_SERVER_F_PANIC, status: 0, panic: "boom", pattern: "GET /items/{id}" });
    expect(s.status).toEqual({ code: "error", message: "panic: boom" });
    expect(s.attributes["error.type"]).toBe("panic");
    expect(s.attributes["http.response.status_code"]).toBeUndefined();
    expect(s.events).toEqual([{ name: "exception", timeUnixNano: s.endTimeUnixNano, attributes: { "exception.type": "panic", "exception.message": "boom" } }]);
    expect(s.name).toBe("GET /items/{id}");
  });
  test("PANIC with a status already written keeps it; a value without text gives no message attribute", () => {
    const s = server({ flags: base | E.NETHTTP_SERVER_F_PANIC, status: 202 });
    expect(s.attributes["http.response.status_code"]).toBe(202);
    expect(s.status).toEqual({ code: "error", message: "panic" });
    expect(s.events?.[0]?.attributes).toEqual({ "exception.type": "panic" });
  });
  test("ABORTED: Error, error.type aborted, no event", () => {
    const s = server({ flags: base | E.NETHTTP_SERVER_F_ABORTED, status: 0 });
    expect(s.status).toEqual({ code: "error", message: "the handler did not return (a panic or runtime.Goexit)" });
    expect(s.attributes["error.type"]).toBe("aborted");
    expect(s.events).toBeUndefined();
    expect(s.attributes["http.response.status_code"]).toBeUndefined();
  });
  test("a panic text longer than its cap is marked truncated", () => {
    const s = server({ flags: base | E.NETHTTP_SERVER_F_PANIC, panic: "x".repeat(10), truncated: truncBit(SERVER, "panic") });
    expect(s.attributes["beetrace.truncated"]).toBe("exception.message");
  });
});

describe("context in (traceparent)", () => {
  test("a remote parent's tracestate goes on the span; without a parent it is ignored", () => {
    const flags = E.NETHTTP_SERVER_F_STATUS | E.REC_SPAN_F_HAS_PARENT | E.REC_SPAN_F_REMOTE_PARENT | E.REC_SPAN_F_TRACE_FLAGS_KNOWN | E.REC_SPAN_F_SAMPLED;
    const input = serverInput({ flags, parent: PARENT });
    input.strings!.tracestate = "rojo=00f067aa0ba902b7";
    const s = mustDecode(SERVER, input);
    expect({ parent: s.parentSpanId, state: s.traceState }).toEqual({ parent: PARENT, state: "rojo=00f067aa0ba902b7" });
    const orphan = serverInput({ flags: E.NETHTTP_SERVER_F_STATUS });
    orphan.strings!.tracestate = "rojo=1";
    expect(mustDecode(SERVER, orphan).traceState).toBeUndefined();
  });
});

describe("hostile layouts", () => {
  test("a file layout whose fields lie outside the record reads them as empty, never throws", () => {
    const fields: Record<string, readonly [number, number]> = { ...SERVER.fields, status: [5000, 2], method_len: [4000, 1], trace_id: [3000, 16] };
    const bad: RecordLayout = { ...SERVER, fields };
    const schema: RecordSchema = { ...builtinRecordSchema(), types: { ...builtinRecordSchema().types, [String(E.REC_NETHTTP_SERVER)]: bad } };
    const d = new SpanDecoder(schema);
    const w = new RecordWriter(SERVER);
    const input = serverInput();
    const buf = new Uint8Array(w.size(input));
    w.write(input, buf, 0);
    let span: Span | undefined;
    expect(() => (span = d.decodeAt(buf, new DataView(buf.buffer), 0, buf.length, { toEpoch }))).not.toThrow();
    // The method's length field is outside: the strings shift, and what is read stays inside the record.
    expect(span === undefined || span.traceId === "").toBe(true);
    expect(d.decodeAt(buf, new DataView(buf.buffer), 10, buf.length, { toEpoch })).toBeUndefined();
  });
});

describe("HTTP/2 stream ids", () => {
  test("h2_stream_id becomes beetrace.http2.stream_id on server and client spans; 0 (HTTP/1) adds nothing", () => {
    const s = serverInput({ major: 2, minor: 0 });
    const c = clientInput({ status: 200 });
    expect(mustDecode(SERVER, { ...s, fields: { ...s.fields, h2_stream_id: 7 } }).attributes["beetrace.http2.stream_id"]).toBe(7);
    expect(mustDecode(CLIENT, { ...c, fields: { ...c.fields, h2_stream_id: 0x7fffffff } }).attributes["beetrace.http2.stream_id"]).toBe(0x7fffffff);
    expect(server().attributes["beetrace.http2.stream_id"]).toBeUndefined();
    expect(client({ status: 200 }).attributes["beetrace.http2.stream_id"]).toBeUndefined();
  });
  test("an older capture's layout (no h2_stream_id, strings right after the fixed fields) still decodes", () => {
    const old: RecordLayout = structuredClone(SERVER);
    delete (old.fields as Record<string, unknown>)["h2_stream_id"];
    old.fixed = old.fields["tracestate_len"]![0] + 1; // 67, as before the field
    const schema: RecordSchema = { ...builtinRecordSchema(), types: { ...builtinRecordSchema().types, [String(E.REC_NETHTTP_SERVER)]: old } };
    const span = mustDecode(old, serverInput({ major: 2, minor: 0, path: "/old" }), new SpanDecoder(schema));
    expect({ path: span.attributes["url.path"], sid: span.attributes["beetrace.http2.stream_id"] }).toEqual({ path: "/old", sid: undefined });
  });
});
