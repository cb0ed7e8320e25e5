/**
 * @module offsets/planned-fields — struct fields that probes NOT YET WRITTEN will read.
 *
 * The offsets tracker records these alongside probeFields() (the fields of probes that exist),
 * so that when a gRPC, kafka-go, x/net or otel probe lands, offsets for every released version
 * are already in offsets.json. Nothing at run time reads this list except `offsets extract` and
 * the tracker. The choice follows what peer tracers read for the same spans (see the research
 * notes on OpenTelemetry Go auto-instrumentation, §1.1); when a probe is written it declares its
 * own fields and the entries here become redundant (the union deduplicates them).
 *
 * Paths are "<import path>.<Type>.<field>" exactly as the Go linker names the type in DWARF.
 */
import { probeFields } from "../probes/registry.ts";
import { moduleOfField } from "./resolve.ts";

/** Modules (besides the standard library, "std") whose fields are tracked. */
export const TRACKED_MODULES = ["google.golang.org/grpc", "golang.org/x/net", "github.com/segmentio/kafka-go", "go.opentelemetry.io/otel", "github.com/quic-go/quic-go"] as const;

/** For probes not yet written, grouped by the module that defines the type. */
export const PLANNED_FIELDS: Readonly<Record<string, readonly string[]>> = {
  std: [
    // net/http server: headers (traceparent), protocol string, the request behind a ResponseWriter
    "net/http.Request.Header",
    "net/http.Request.Proto",
    "net/http.response.req",
    // net/http client: url.full pieces (Go 1.26 reordered net/url.URL)
    "net/url.URL.RawPath",
    "net/url.URL.OmitHost",
    "net/url.URL.ForceQuery",
    "net/url.URL.Fragment",
    "net/url.URL.RawFragment",
    "net/url.Userinfo.username",
    // header injection into the buffered writer of an HTTP/1 connection
    "bufio.Writer.buf",
    "bufio.Writer.n",
    // peer/local address of gRPC connections
    "net.TCPAddr.IP",
    "net.TCPAddr.Port",
    // goroutine id and the pre-swiss-map layout (Go < 1.24) for map walks
    "runtime.g.goid",
    "runtime.hmap.buckets",
    // database/sql: the driver behind a DB (db.system.name), a prepared statement's text, and
    // the DB behind a Conn, Tx or Stmt
    "database/sql.DB.connector",
    "database/sql.dsnConnector.driver",
    "database/sql.Stmt.db",
    "database/sql.Stmt.query",
    "database/sql.Tx.db",
    "database/sql.Conn.db",
    "database/sql.driverConn.ci",
    // the cause of a transport error (error.type): the wrappers net/http's client returns
    "net/url.Error.Op",
    "net/url.Error.Err",
    "net.OpError.Op",
    "net.OpError.Err",
    "os.SyscallError.Syscall",
    "os.SyscallError.Err",
    "net.DNSError.IsTimeout",
    "net.DNSError.IsNotFound",
    // a connection's addresses, for joining a client span to the server span it caused
    "net.conn.fd",
    "net.netFD.laddr",
    "net.netFD.raddr",
    "net/http.persistConn.conn",
    "crypto/tls.Conn.conn",
    "net/http.conn.rwc",
  ],
  "google.golang.org/grpc": [
    "google.golang.org/grpc.ClientConn.target",
    "google.golang.org/grpc/internal/transport.http2Client.nextID",
    "google.golang.org/grpc/internal/transport.headerFrame.hf",
    "google.golang.org/grpc/internal/transport.headerFrame.streamID",
    "google.golang.org/grpc/internal/transport.clientHeaders.hf",
    "google.golang.org/grpc/internal/transport.clientHeaders.streamID",
    "google.golang.org/grpc/internal/transport.Stream.method",
    "google.golang.org/grpc/internal/transport.Stream.id",
    "google.golang.org/grpc/internal/transport.Stream.ctx",
    "google.golang.org/grpc/internal/transport.ServerStream.Stream",
    "google.golang.org/grpc/internal/transport.http2Server.peer",
    // the server transport's remote address before http2Server.peer (grpc < 1.60)
    "google.golang.org/grpc/internal/transport.http2Server.remoteAddr",
    "google.golang.org/grpc/internal/status.Error.s",
    "google.golang.org/grpc/internal/status.Status.s",
    "google.golang.org/grpc/peer.Peer.LocalAddr",
    "google.golang.org/grpc/peer.Peer.Addr",
  ],
  "golang.org/x/net": ["golang.org/x/net/http2.MetaHeadersFrame.Fields", "golang.org/x/net/http2.FrameHeader.StreamID"],
  "github.com/segmentio/kafka-go": [
    "github.com/segmentio/kafka-go.Writer.Topic",
    "github.com/segmentio/kafka-go.Message.Topic",
    "github.com/segmentio/kafka-go.Message.Partition",
    "github.com/segmentio/kafka-go.Message.Offset",
    "github.com/segmentio/kafka-go.Message.Key",
    "github.com/segmentio/kafka-go.Message.Headers",
    "github.com/segmentio/kafka-go.Message.Time",
    "github.com/segmentio/kafka-go.Reader.config",
    "github.com/segmentio/kafka-go.ReaderConfig.GroupID",
  ],
  "go.opentelemetry.io/otel": [
    "go.opentelemetry.io/otel/internal/global.tracer.delegate",
    "go.opentelemetry.io/otel/internal/global.tracer.name",
    "go.opentelemetry.io/otel/internal/global.tracer.provider",
    "go.opentelemetry.io/otel/internal/global.tracerProvider.tracers",
    // the OTel API probe (src/probes/otelapi/manifest.ts declares them too)
    "go.opentelemetry.io/otel/internal/global.tracer.opts",
    "go.opentelemetry.io/otel/attribute.KeyValue.Key",
    "go.opentelemetry.io/otel/attribute.KeyValue.Value",
    "go.opentelemetry.io/otel/attribute.Value.vtype",
    "go.opentelemetry.io/otel/attribute.Value.numeric",
    "go.opentelemetry.io/otel/attribute.Value.stringly",
    "go.opentelemetry.io/otel/attribute.Value.slice",
    "go.opentelemetry.io/otel/trace.Link.SpanContext",
    "go.opentelemetry.io/otel/trace.Link.Attributes",
    "go.opentelemetry.io/otel/trace.SpanContext.traceID",
    "go.opentelemetry.io/otel/trace.SpanContext.spanID",
  ],
};

/** The module ("std" or a module path) that owns a tracked field. */
export function trackedModuleOf(field: string): string {
  return moduleOfField(field, TRACKED_MODULES);
}

/**
 * Every tracked field of `module` — probeFields() ∪ PLANNED_FIELDS — sorted; with no argument,
 * the fields of every module. Fields of probes that exist come first in importance but the
 * list is sorted so the tracker's cache keys and output do not depend on declaration order.
 */
export function trackedFields(module?: string): string[] {
  const all = new Set<string>([...probeFields(), ...Object.values(PLANNED_FIELDS).flat()]);
  return [...all].filter((f) => !NOT_YET_TRACKED.has(f) && (module === undefined || trackedModuleOf(f) === module)).sort();
}

/**
 * Fields probes read that offsets.json does not have yet: a std field added after the last
 * full std run (it rebuilds every release, ~1 h). Until the next run they come from DWARF only;
 * their probes treat them as optional. Remove an entry when the tracker has run with it.
 */
export const NOT_YET_TRACKED: ReadonlySet<string> = new Set([
  "crypto/tls.Conn.conn",
  // net/http HTTP/2 stream ids and the HTTP/2 client's connection (src/probes/nethttp/)
  "net/http.http2clientStream.ID",
  "net/http.http2clientStream.cc",
  "net/http.http2ClientConn.tconn",
  "net/http.http2responseWriterState.stream",
  "net/http.http2stream.id",
  "net/http/internal/http2.clientStream.ID",
  "net/http/internal/http2.clientStream.cc",
  "net/http/internal/http2.ClientConn.tconn",
  "net/http/internal/http2.ClientRequest.URL",
  "net/http/internal/http2.responseWriterState.stream",
  "net/http/internal/http2.stream.id",
  "net/http/internal/http2.ServerRequest.Context",
  "net/http/internal/http2.ServerRequest.ProtoMajor",
  "net/http/internal/http2.ServerRequest.ProtoMinor",
  "net/http/internal/http2.ServerRequest.Method",
  "net/http/internal/http2.ServerRequest.URL",
  "net/http/internal/http2.ServerRequest.Header",
  "net/http/internal/http2.ServerRequest.Host",
  "net/http/internal/http2.ServerRequest.RemoteAddr",
  "net/http/internal/http2.ServerRequest.TLS",
]);
