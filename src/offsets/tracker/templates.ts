/**
 * @module offsets/tracker/templates — the tiny Go programs the offsets tracker builds, one per
 * tracked module, and which versions of each module are tracked.
 *
 * Each program only has to LINK the code that uses the tracked types (the linker emits DWARF for
 * types reachable from linked code); it never runs. The `len(os.Args) != 42` guard keeps the
 * compiler from proving the code dead. The APIs used exist across every tracked version, so one
 * program per module builds them all; `anchors` are types that must be in DWARF for a build to
 * count (a missing anchor means the program did not link what it should, not that fields vanished).
 */

export interface ModuleTemplate {
  /** "std" or a module path */
  module: string;
  /** oldest tracked version: a Go toolchain for std ("go1.17"), else a module version */
  since: string;
  /** types that every tracked version has; the build fails if DWARF lacks one */
  anchors: string[];
  /** main.go of the program */
  main: string;
  /** `go build -tags` (e.g. to compile a module's code that the pinned toolchain would leave out) */
  buildTags?: string[];
}

const GUARD = `	// Never true when built by the tracker; the code below only has to be linked, not run.
	if len(os.Args) != 42 {
		return
	}`;

export const TEMPLATES: readonly ModuleTemplate[] = [
  {
    module: "std",
    // Go 1.17 brought the register-based calling convention (amd64) that the probes rely on;
    // its x.0 release is named "go1.17" (no ".0" before Go 1.21).
    since: "go1.17",
    anchors: ["net/http.Request", "net/http.response", "net/url.URL", "net/http.Response", "bufio.Writer", "net.TCPAddr", "runtime.g", "database/sql.DB", "net.OpError"],
    main: `package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
)

func main() {
${GUARD}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Method, r.URL.Path, r.Header.Get("x"))
	})
	go http.ListenAndServe(os.Args[1], nil)
	resp, err := http.Get(os.Args[2])
	if err == nil {
		fmt.Println(resp.StatusCode)
		resp.Body.Close()
	}
	u, _ := url.Parse(os.Args[3])
	fmt.Println(u.User.Username(), u.String())
	bw := bufio.NewWriter(os.Stdout)
	bw.WriteString(os.Args[4])
	bw.Flush()
	a, _ := net.ResolveTCPAddr("tcp", os.Args[5])
	fmt.Println(a.IP, a.Port)
	m := map[string]int{os.Args[6]: 1}
	fmt.Println(len(m))
	// database/sql's DB, Conn, Tx and Stmt and the dsnConnector sql.Open makes.
	if db, err := sql.Open(os.Args[7], os.Args[8]); err == nil {
		ctx := context.Background()
		c, _ := db.Conn(ctx)
		tx, _ := db.BeginTx(ctx, nil)
		st, _ := db.PrepareContext(ctx, os.Args[9])
		fmt.Println(c, tx, st)
	}
	var oe *net.OpError
	var se *os.SyscallError
	var de *net.DNSError
	fmt.Println(oe, se, de)
}
`,
  },
  {
    module: "google.golang.org/grpc",
    // Peers require >= 1.40 for the status fields; older releases predate the probes we plan.
    since: "v1.40.0",
    anchors: ["google.golang.org/grpc.ClientConn", "google.golang.org/grpc/internal/transport.http2Client", "google.golang.org/grpc/internal/transport.http2Server"],
    main: `package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func main() {
${GUARD}
	lis, _ := net.Listen("tcp", os.Args[1])
	srv := grpc.NewServer()
	go srv.Serve(lis)
	cc, err := grpc.Dial(os.Args[2], grpc.WithInsecure())
	if err != nil {
		return
	}
	var p peer.Peer
	err = cc.Invoke(context.Background(), os.Args[3], nil, nil, grpc.Peer(&p))
	fmt.Println(status.Code(err), status.Convert(err).Message(), p.Addr)
	cs, err := cc.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true}, os.Args[4])
	if err == nil {
		fmt.Println(cs.RecvMsg(nil))
	}
}
`,
  },
  {
    module: "golang.org/x/net",
    // v0.1.0 is the first tagged release (before it, only pseudo-versions).
    since: "v0.1.0",
    // Not an anchor: golang.org/x/net/http2.responseWriterState. Recent releases built by Go 1.27
    // wrap net/http's own HTTP/2 server (http2/server_wrap.go) and lack the type; http2legacy
    // compiles x/net's own server, as every build by Go <= 1.26 has it (same layout).
    anchors: ["golang.org/x/net/http2.FrameHeader", "golang.org/x/net/http2.MetaHeadersFrame"],
    buildTags: ["http2legacy"],
    main: `package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func main() {
${GUARD}
	// The server (its responseWriter and responseWriterState) through ServeConn.
	if c, err := net.Dial("tcp", os.Args[1]); err == nil {
		(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{Handler: http.NotFoundHandler()})
	}
	// The client (its ClientConn and clientStream) through a ClientConn on a connection.
	if c, err := net.Dial("tcp", os.Args[1]); err == nil {
		if cc, err := (&http2.Transport{}).NewClientConn(c); err == nil {
			if req, err := http.NewRequest("GET", "http://"+os.Args[1]+"/", nil); err == nil {
				fmt.Println(cc.RoundTrip(req))
			}
		}
	}
	fr := http2.NewFramer(os.Stdout, os.Stdin)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	f, err := fr.ReadFrame()
	if err != nil {
		return
	}
	if mh, ok := f.(*http2.MetaHeadersFrame); ok {
		fmt.Println(mh.Fields, mh.StreamID, mh.Header().StreamID)
	}
}
`,
  },
  {
    module: "github.com/segmentio/kafka-go",
    // Peers support 0.4.x; the 0.1/0.2 API (2018) differs.
    since: "v0.4.0",
    anchors: ["github.com/segmentio/kafka-go.Message", "github.com/segmentio/kafka-go.Writer", "github.com/segmentio/kafka-go.Reader"],
    main: `package main

import (
	"context"
	"fmt"
	"os"

	kafka "github.com/segmentio/kafka-go"
)

func main() {
${GUARD}
	w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{os.Args[1]}, Topic: os.Args[2]})
	fmt.Println(w.WriteMessages(context.Background(), kafka.Message{Key: []byte(os.Args[3])}))
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{os.Args[1]}, GroupID: os.Args[4], Topic: os.Args[2]})
	m, err := r.FetchMessage(context.Background())
	fmt.Println(m.Topic, m.Partition, m.Offset, string(m.Key), len(m.Headers), m.Time, err)
}
`,
  },
  {
    module: "go.opentelemetry.io/otel",
    since: "v1.0.0",
    anchors: ["go.opentelemetry.io/otel/internal/global.tracer", "go.opentelemetry.io/otel/internal/global.tracerProvider", "go.opentelemetry.io/otel/attribute.KeyValue", "go.opentelemetry.io/otel/trace.Link"],
    main: `package main

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func main() {
${GUARD}
	// The OTel API probe reads the tracer's options, attribute.KeyValue and trace.Link (links).
	tr := otel.Tracer(os.Args[1], trace.WithInstrumentationVersion(os.Args[3]))
	ctx, span := tr.Start(context.Background(), os.Args[2], trace.WithLinks(trace.Link{Attributes: []attribute.KeyValue{attribute.String(os.Args[4], os.Args[5])}}))
	span.SetAttributes(attribute.String(os.Args[4], os.Args[5]))
	span.End()
	fmt.Println(ctx, trace.SpanContextFromContext(ctx).TraceID())
}
`,
  },
  {
    module: "github.com/quic-go/quic-go",
    // v0.59.1 is the oldest release whose server runs handlers from
    // RawServerConn.handleRequestStream's closure, which the HTTP/3 probe knows (src/probes/http3/).
    since: "v0.59.1",
    anchors: ["github.com/quic-go/quic-go/http3.responseWriter"],
    main: `package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/quic-go/quic-go/http3"
)

func main() {
${GUARD}
	// The server (its responseWriter) and the client Transport.
	if c, err := net.ListenPacket("udp", os.Args[1]); err == nil {
		fmt.Println((&http3.Server{Handler: http.NotFoundHandler()}).Serve(c))
	}
	resp, err := (&http.Client{Transport: &http3.Transport{}}).Get(os.Args[2])
	fmt.Println(resp, err)
}
`,
  },
];

export function templateFor(module: string): ModuleTemplate | undefined {
  return TEMPLATES.find((t) => t.module === module);
}
