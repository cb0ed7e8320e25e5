/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nethttp.h — span records of the net/http probes (bpf/nethttp.bpf.c), read back by
 * src/probes/nethttp/ through layouts generated from this object's BTF.
 *
 * Strings follow the fixed fields, packed in the order of their `*_len` fields; a length (u8)
 * is the number of bytes stored (at most the string's cap below); rec_span.truncated bit i says
 * string i (in that order) was longer.
 */
#ifndef BEETRACE_SHARED_NETHTTP_H
#define BEETRACE_SHARED_NETHTTP_H

#include <linux/types.h>
#include "span.h"

/* Caps of the strings (bytes kept); each fits its u8 length field. */
#define NETHTTP_METHOD_CAP 16
#define NETHTTP_PATH_CAP 255
#define NETHTTP_HOST_CAP 128
#define NETHTTP_REMOTE_CAP 64
#define NETHTTP_PATTERN_CAP 128
#define NETHTTP_SCHEME_CAP 8
#define NETHTTP_PANIC_CAP 128
#define NETHTTP_TRACESTATE_CAP 255

/* rec_nethttp_server flags (bits 8-15 of rec_span.flags). */
enum rec_nethttp_server_flags {
	/* status was read: from *http.response (HTTP/1) or http2responseWriter.rws (HTTP/2) */
	NETHTTP_SERVER_F_STATUS = 1 << 8,
	/* the route pattern was read (0 length = no pattern matched) */
	NETHTTP_SERVER_F_PATTERN = 1 << 9,
	/* the TLS field was read (its offset is known); without it the scheme is unknown */
	NETHTTP_SERVER_F_TLS_KNOWN = 1 << 10,
	/* Request.TLS != nil: the request arrived over TLS */
	NETHTTP_SERVER_F_TLS = 1 << 11,
	/* the handler hijacked the connection: the span ends at Hijack */
	NETHTTP_SERVER_F_HIJACKED = 1 << 12,
	/* the handler panicked: the span ends where net/http recovers it; `panic` holds the value's
	 * text when it is a string or a pointer to a struct whose first field is a string */
	NETHTTP_SERVER_F_PANIC = 1 << 13,
	/* the handler did not return and no panic could be seen (runtime.Goexit, or g._panic unknown) */
	NETHTTP_SERVER_F_ABORTED = 1 << 14,
	/* no traceparent came: the parent is the client span another traced process has in flight
	 * on this connection (its local end is this request's peer end; bpf/include/conn_ctx.bpf.h) */
	NETHTTP_SERVER_F_CONN_JOINED = 1 << 15,
};

/* One net/http server request (serverHandler.ServeHTTP). Strings: method, path (URL.Path),
 * host (Request.Host), remote (Request.RemoteAddr), pattern (ServeMux pattern), panic (the
 * panic value's text, NETHTTP_SERVER_F_PANIC), tracestate (the W3C tracestate header that came
 * with a valid traceparent). */
struct rec_nethttp_server {
	struct rec_span h;
	__u16 status;     /* 0 = no header written (net/http then sends 200) */
	__u8 proto_major; /* Request.ProtoMajor, clamped to 255 */
	__u8 proto_minor;
	__u8 method_len;
	__u8 path_len;
	__u8 host_len;
	__u8 remote_len;
	__u8 pattern_len;
	__u8 panic_len;
	__u8 tracestate_len;
	/* HTTP/2: the request's stream id on its connection (RFC 9113 §5.1.1; odd, from 1), read at
	 * the entry from the ResponseWriter's state; 0 for HTTP/1 or when its offsets are unknown.
	 * With network.peer.address/port it names the client span exactly (`beetrace merge`). Added
	 * after the fields above: older captures' layouts lack it and read it as 0. */
	__u32 h2_stream_id;
	__u8 strings[];
};
/* Strings start at offsetof(strings), not sizeof (which rounds up to the 8-byte alignment). */
_Static_assert(__builtin_offsetof(struct rec_nethttp_server, strings) == 72, "rec_nethttp_server layout");

/* rec_nethttp_client flags (bits 8-15 of rec_span.flags). */
enum rec_nethttp_client_flags {
	NETHTTP_CLIENT_F_RESPONSE = 1 << 8,  /* *Response != nil; status valid */
	NETHTTP_CLIENT_F_ERROR = 1 << 9,     /* error != nil; err_cause valid */
	NETHTTP_CLIENT_F_QUERY = 1 << 10,    /* URL.RawQuery non-empty (values never recorded) */
	NETHTTP_CLIENT_F_USER = 1 << 11,     /* URL.User != nil (userinfo never recorded) */
	NETHTTP_CLIENT_F_PASSWORD = 1 << 12, /* URL.User has a password set */
	NETHTTP_CLIENT_F_OPAQUE = 1 << 13,   /* URL.Opaque non-empty (path is not the whole story) */
};

/* One net/http client request ((*Transport).roundTrip). Strings: method, scheme,
 * url_host (URL.Host), path (URL.Path), req_host (Request.Host).
 * local_addr/local_port: the local end of the connection the request went out on
 * (network.local.address/port), read at (*persistConn).roundTrip (HTTP/1) or at the HTTP/2
 * clientStream's encodeAndWriteHeaders (from ClientConn.tconn); local_addr_size is 4 (IPv4),
 * 16 (IPv6) or 0 (not known: offsets unknown, not a TCP connection). With h2_stream_id they let
 * `beetrace merge` find the server span this request caused (its network.peer.address/port). */
struct rec_nethttp_client {
	struct rec_span h;
	__u16 status;    /* Response.StatusCode */
	__u16 err_errno; /* the syscall.Errno inside the returned error (err_cause GO_ERR_ERRNO) */
	__u16 local_port;
	__u8 local_addr[16];
	__u8 local_addr_size;
	__u8 err_cause;  /* enum go_err_cause of the returned error (go_errors.bpf.h) */
	__u8 method_len;
	__u8 scheme_len;
	__u8 url_host_len;
	__u8 path_len;
	__u8 req_host_len;
	/* HTTP/2: the request's stream id (clientStream.ID, assigned on the stream's own goroutine
	 * right before its HEADERS are written); 0 for HTTP/1 or unknown. Added after the fields
	 * above: older captures' layouts lack it and read it as 0. */
	__u32 h2_stream_id;
	__u8 strings[];
};
_Static_assert(__builtin_offsetof(struct rec_nethttp_client, strings) == 92, "rec_nethttp_client layout");

#endif /* BEETRACE_SHARED_NETHTTP_H */
