/**
 * @module probes/protocols — what a binary speaks that beetrace does not trace (yet), so that an
 * operator is told instead of seeing silently missing spans: an x/net/http2 server's requests never pass through
 * net/http.serverHandler, an HTTP/3 server's never touch net/http at all.
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
  what: string;
}

const DETECTORS: readonly Detector[] = [
  {
    name: "HTTP/2 (golang.org/x/net/http2)",
    module: "golang.org/x/net",
    linked: ["golang.org/x/net/http2.(*serverConn).runHandler"],
    what: "requests served by x/net/http2's own server bypass net/http's handler path and have no spans yet",
  },
  {
    name: "HTTP/3 (quic-go)",
    module: "github.com/quic-go/quic-go",
    linked: ["github.com/quic-go/quic-go/http3.(*Server).handleRequest", "github.com/quic-go/quic-go/http3.(*Server).handleConn", "github.com/quic-go/quic-go/http3.(*RoundTripper).RoundTrip", "github.com/quic-go/quic-go/http3.(*Transport).RoundTrip"],
    what: "HTTP/3 requests have no spans yet",
  },
];

/** The protocols this binary links that beetrace does not trace. */
export function untracedProtocols(a: BinaryAnalysis): UntracedProtocol[] {
  const out: UntracedProtocol[] = [];
  for (const d of DETECTORS) {
    const version = d.module === "std" ? a.goVersion : a.modules.get(d.module);
    if (version === undefined) continue;
    if (!d.linked.some((name) => a.pcln.find(name) !== undefined)) continue;
    out.push({ name: d.name, via: d.module === "std" ? `the standard library (${a.goVersion})` : `${d.module} ${version}`, what: d.what });
  }
  return out;
}
