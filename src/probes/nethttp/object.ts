/**
 * @module probes/nethttp/object — bpf/nethttp.bpf.c, shared by the server and client probes,
 * and the net/http.Request fields both read.
 */
import type { BpfObjectSpec, FieldDecl } from "../probe.ts";
import { ENUMERATORS as E, type CounterName, type MapName, type RodataName } from "./nethttp.gen.ts";

/** A FieldDecl whose const is checked against the object's generated rodata names. */
export type NethttpField = FieldDecl & { const: RodataName };

const counter = (name: CounterName, rest: Omit<BpfObjectSpec["counters"][number], "name">) => ({ name, ...rest });
const maps = (...names: MapName[]): string[] => names;

export const NETHTTP_OBJECT: BpfObjectSpec = {
  name: "nethttp",
  callMaps: maps("nethttp_server_calls", "nethttp_client_calls"),
  callSlots: maps("nethttp_server_slots", "nethttp_client_slots"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call map full at entry: call not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "string longer than its cap" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "stale call state replaced (earlier call never ended: panic/Goexit)" }),
    counter("ctx_map_full", { what: "context map full: cross-goroutine children lose their parent" }),
    counter("conn_joins", { what: "server requests without traceparent given a traced client span as parent by their connection" }),
  ],
  cookieVariants: {
    nethttp_server_end_http1: serverEnd(E.NETHTTP_WRITER_HTTP1, E.NETHTTP_END_MARKER, { rwArg: true }),
    nethttp_server_end_http2: serverEnd(E.NETHTTP_WRITER_HTTP2, E.NETHTTP_END_DEFERRED),
    nethttp_server_end_http2_done: serverEnd(E.NETHTTP_WRITER_HTTP2, E.NETHTTP_END_MARKER, { rwArg: true }),
    nethttp_server_end_conn: serverEnd(E.NETHTTP_WRITER_HTTP1, E.NETHTTP_END_DEFERRED),
    nethttp_server_end_hijack: serverEnd(E.NETHTTP_WRITER_HTTP1, E.NETHTTP_END_MARKER, { rwArg: true, hijacked: true }),
    nethttp_server_return: serverEnd(E.NETHTTP_WRITER_UNKNOWN, E.NETHTTP_END_RET),
    nethttp_server_end_xnet: serverEnd(E.NETHTTP_WRITER_XNET_H2, E.NETHTTP_END_DEFERRED),
    nethttp_server_end_xnet_done: serverEnd(E.NETHTTP_WRITER_XNET_H2, E.NETHTTP_END_MARKER, { rwArg: true }),
    nethttp_server_return_xnet: serverEnd(E.NETHTTP_WRITER_XNET_H2, E.NETHTTP_END_RET),
  },
};

/** nethttp_server_end's cookie for one end (enum nethttp_end_cookie in bpf/nethttp.bpf.c). */
function serverEnd(writer: number, how: number, o: { rwArg?: boolean; hijacked?: boolean } = {}): { program: string; cookie: number } {
  const cookie = writer | (how << E.NETHTTP_COOKIE_HOW_SHIFT) | (o.rwArg ? E.NETHTTP_COOKIE_RW_ARG : 0) | (o.hijacked ? E.NETHTTP_COOKIE_HIJACKED : 0);
  return { program: "nethttp_server_end", cookie };
}

export const REQ_METHOD: NethttpField = { const: "req_method_off", field: "net/http.Request.Method", required: true, why: "http.request.method" };
export const REQ_URL: NethttpField = { const: "req_url_off", field: "net/http.Request.URL", required: true, why: "the *url.URL holding path/host/scheme" };
export const URL_PATH: NethttpField = { const: "url_path_off", field: "net/url.URL.Path", required: true, why: "url.path, url.full" };
export const REQ_HOST: NethttpField = { const: "req_host_off", field: "net/http.Request.Host", required: true, why: "server.address/server.port" };
export const REQ_CTX: NethttpField = {
  const: "req_ctx_off",
  field: "net/http.Request.ctx",
  required: false,
  why: "parent/child links across goroutines (context.Context chain)",
};

export const SCOPE_NAME = "beetrace/net/http";

/**
 * An HTTP/2 request's stream id on its connection (RFC 9113 §5.1.1), on client and server spans.
 * Semantic conventions have no attribute for it (v1.37): this one is beetrace's own. With the
 * connection's ends it names the one client span a server span answers (`beetrace merge`).
 */
export const H2_STREAM_ID = "beetrace.http2.stream_id";
