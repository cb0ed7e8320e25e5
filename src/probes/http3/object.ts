/**
 * @module probes/http3/object — bpf/http3.bpf.c, shared by the HTTP/3 server and client probes
 * (github.com/quic-go/quic-go/http3), and the struct fields both read.
 */
import type { BpfObjectSpec, FieldDecl } from "../probe.ts";
import type { CounterName, MapName, RodataName } from "./http3.gen.ts";

/** A FieldDecl whose const is checked against the object's generated rodata names. */
export type Http3Field = FieldDecl & { const: RodataName };

const counter = (name: CounterName, rest: Omit<BpfObjectSpec["counters"][number], "name">) => ({ name, ...rest });
const maps = (...names: MapName[]): string[] => names;

export const HTTP3_OBJECT: BpfObjectSpec = {
  name: "http3",
  callMaps: maps("http3_server_calls", "http3_client_calls"),
  callSlots: maps("http3_server_slots", "http3_client_slots"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call map full at entry: call not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "string longer than its cap" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "stale call state replaced (an earlier call on the goroutine never ended)" }),
    counter("ctx_map_full", { what: "context map full: cross-goroutine children lose their parent" }),
    counter("unexpected_args", { what: "HTTP/3 handler call whose arguments did not hold an HTTP/3 request (a quic-go release that reorders them): not traced" }),
  ],
};

export const LIBRARY = "github.com/quic-go/quic-go/http3";
export const SCOPE_NAME = "beetrace/github.com/quic-go/quic-go/http3";

// The std *http.Request both sides read (quic-go builds and takes std requests).
export const REQ_METHOD: Http3Field = { const: "req_method_off", field: "net/http.Request.Method", required: true, why: "http.request.method" };
export const REQ_URL: Http3Field = { const: "req_url_off", field: "net/http.Request.URL", required: true, why: "the *url.URL holding path/host/scheme" };
export const URL_PATH: Http3Field = { const: "url_path_off", field: "net/url.URL.Path", required: true, why: "url.path, url.full" };
export const REQ_HOST: Http3Field = { const: "req_host_off", field: "net/http.Request.Host", required: true, why: "server.address/server.port" };
export const REQ_PROTO_MAJOR: Http3Field = { const: "req_proto_major_off", field: "net/http.Request.ProtoMajor", required: true, why: "network.protocol.version; tells an HTTP/3 request" };
export const REQ_CTX: Http3Field = { const: "req_ctx_off", field: "net/http.Request.ctx", required: false, why: "parent/child links across goroutines (context.Context chain)" };
