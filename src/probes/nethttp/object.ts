/**
 * @module probes/nethttp/object — bpf/nethttp.bpf.c, shared by the server and client probes,
 * and the net/http.Request fields both read.
 */
import type { BpfObjectSpec, FieldDecl } from "../probe.ts";
import type { CounterName, MapName, RodataName } from "./nethttp.gen.ts";

/** A FieldDecl whose const is checked against the object's generated rodata names. */
export type NethttpField = FieldDecl & { const: RodataName };

const counter = (name: CounterName, rest: Omit<BpfObjectSpec["counters"][number], "name">) => ({ name, ...rest });
const maps = (...names: MapName[]): string[] => names;

export const NETHTTP_OBJECT: BpfObjectSpec = {
  name: "nethttp",
  callMaps: maps("nethttp_server_calls", "nethttp_client_calls"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call map full at entry: call not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "string longer than its cap" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "stale call state replaced (earlier call never ended: panic/Goexit)" }),
    counter("ctx_map_full", { what: "context map full: cross-goroutine children lose their parent" }),
  ],
};

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
