/**
 * @module probes/protocols — what a binary speaks that beetrace does not trace (yet), so that an
 * operator is told instead of seeing silently missing spans: an HTTP/3 server of a quic-go
 * release whose handler call the HTTP/3 probe does not know; an x/net h2c server whose handler
 * call no probe sees (neither x/net's runHandler nor Go 1.27's http2Handler.ServeHTTP linked).
 *
 * Detected from the build info (modules) and the function table (is the server/client code
 * linked, not just the module). Each entry says what is missing; `inspect` lists them and the
 * start-up line names them.
 */
import type { BinaryAnalysis } from "../binary/analyze.ts";

export interface UntracedProtocol {
  /** short name for messages: "gRPC" */
  name: string;
  /** the module and version that brings it, e.g. "google.golang.org/grpc v1.60.0" */
  via: string;
  /** what is not traced */
  what: string;
}

interface Detector {
  name: string;
  module: string;
  /** any of these linked means the protocol is used (not only the module present) */
  linked: string[];
  /** ...unless one of these is linked too (the code path beetrace does trace) */
  tracedIfLinked?: string[];
  what: string;
}

const DETECTORS: readonly Detector[] = [
  {
    // x/net >= v0.62 built by Go >= 1.27 wraps net/http's HTTP/2 server (http2/server_wrap.go):
    // its own runHandler (traced) is gone; TLS requests still reach serverHandler, h2c ones reach
    // only net/http's http2Handler.ServeHTTP, probed since (src/probes/nethttp/server.ts).
    name: "HTTP/2 h2c (golang.org/x/net/http2 on net/http's server)",
    module: "golang.org/x/net",
    linked: ["golang.org/x/net/http2.(*Server).ServeConn", "golang.org/x/net/http2.(*Server).serveConn"],
    tracedIfLinked: ["golang.org/x/net/http2.(*serverConn).runHandler", "net/http.http2Handler.ServeHTTP"],
    what: "cleartext (h2c) requests served through x/net's ServeConn/h2c.NewHandler have no server spans yet (TLS ones do)",
  },
  {
    // The HTTP/3 server probe (src/probes/http3/server.ts) knows the handler call of quic-go
    // v0.59 … v0.66 (RawServerConn.handleRequestStream's closure); older releases served
    // requests from (*Server).handleRequest, and a release that renames the closure is not known.
    name: "HTTP/3 server (quic-go)",
    module: "github.com/quic-go/quic-go",
    linked: ["github.com/quic-go/quic-go/http3.(*Server).handleRequest", "github.com/quic-go/quic-go/http3.(*Server).handleConn", "github.com/quic-go/quic-go/http3.(*RawServerConn).handleRequestStream"],
    tracedIfLinked: ["github.com/quic-go/quic-go/http3.(*RawServerConn).handleRequestStream.func2", "github.com/quic-go/quic-go/http3.(*RawServerConn).handleRequestStream.func1"],
    what: "HTTP/3 requests served have no spans: the handler call of this quic-go release is not the one the probe knows (v0.59 … v0.66)",
  },
  {
    // Before the Transport (quic-go < v0.48) the client was http3.RoundTripper.
    name: "HTTP/3 client (quic-go)",
    module: "github.com/quic-go/quic-go",
    linked: ["github.com/quic-go/quic-go/http3.(*RoundTripper).RoundTrip", "github.com/quic-go/quic-go/http3.(*SingleDestinationRoundTripper).RoundTrip"],
    tracedIfLinked: ["github.com/quic-go/quic-go/http3.(*Transport).RoundTrip", "github.com/quic-go/quic-go/http3.(*Transport).RoundTripOpt", "github.com/quic-go/quic-go/http3.(*ClientConn).RoundTrip"],
    what: "HTTP/3 requests sent have no spans (quic-go's RoundTripper before the Transport is not probed)",
  },
];

/** The protocols this binary links that beetrace does not trace. */
export function untracedProtocols(a: BinaryAnalysis): UntracedProtocol[] {
  const out: UntracedProtocol[] = [];
  for (const d of DETECTORS) {
    const version = d.module === "std" ? a.goVersion : a.modules.get(d.module);
    if (version === undefined) continue;
    if (!d.linked.some((name) => a.pcln.find(name) !== undefined)) continue;
    if (d.tracedIfLinked?.some((name) => a.pcln.find(name) !== undefined)) continue;
    out.push({ name: d.name, via: d.module === "std" ? `the standard library (${a.goVersion})` : `${d.module} ${version}`, what: d.what });
  }
  return out;
}
