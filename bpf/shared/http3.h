/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http3.h — span records of the HTTP/3 probes (bpf/http3.bpf.c: github.com/quic-go/quic-go/http3
 * servers and clients), read back by src/probes/http3/ through layouts generated from this
 * object's BTF.
 *
 * Strings follow the fixed fields, packed in the order of their `*_len` fields; a length (u8)
 * is the number of bytes stored (at most the string's cap below); rec_span.truncated bit i says
 * string i (in that order) was longer.
 */
#ifndef BEETRACE_SHARED_HTTP3_H
#define BEETRACE_SHARED_HTTP3_H

#include <linux/types.h>
#include "span.h"

/* Caps of the strings (bytes kept); each fits its u8 length field. */
#define HTTP3_METHOD_CAP 16
#define HTTP3_PATH_CAP 255
#define HTTP3_HOST_CAP 128
#define HTTP3_REMOTE_CAP 64
#define HTTP3_PATTERN_CAP 128
#define HTTP3_SCHEME_CAP 8
#define HTTP3_TRACESTATE_CAP 255

/* rec_http3_server flags (bits 8-15 of rec_span.flags). */
enum rec_http3_server_flags {
	/* status was read from the responseWriter (0 = the handler wrote no header: 200 follows) */
	HTTP3_SERVER_F_STATUS = 1 << 8,
	/* the route pattern was read (0 length = no pattern matched) */
	HTTP3_SERVER_F_PATTERN = 1 << 9,
	/* the handler panicked (quic-go recovered it and reset the stream) */
	HTTP3_SERVER_F_PANIC = 1 << 10,
	/* the handler took the stream over (responseWriter.HTTPStream): no response written by quic-go */
	HTTP3_SERVER_F_HIJACKED = 1 << 11,
};

/* One HTTP/3 request served. Strings: method, path (URL.Path), host (Request.Host), remote
 * (Request.RemoteAddr), pattern (ServeMux pattern), tracestate (the W3C tracestate header that
 * came with a valid traceparent). */
struct rec_http3_server {
	struct rec_span h;
	__u16 status; /* responseWriter.status; 0 = no header written */
	__u8 proto_major; /* Request.ProtoMajor (3), clamped to 255 */
	__u8 proto_minor;
	__u8 method_len;
	__u8 path_len;
	__u8 host_len;
	__u8 remote_len;
	__u8 pattern_len;
	__u8 tracestate_len;
	__u8 strings[];
};
/* Strings start at offsetof(strings), not sizeof (which rounds up to the 8-byte alignment). */
_Static_assert(__builtin_offsetof(struct rec_http3_server, strings) == 66, "rec_http3_server layout");

/* rec_http3_client flags (bits 8-15 of rec_span.flags). */
enum rec_http3_client_flags {
	HTTP3_CLIENT_F_RESPONSE = 1 << 8,  /* *Response != nil; status valid */
	HTTP3_CLIENT_F_ERROR = 1 << 9,     /* error != nil */
	HTTP3_CLIENT_F_QUERY = 1 << 10,    /* URL.RawQuery non-empty (values never recorded) */
	HTTP3_CLIENT_F_USER = 1 << 11,     /* URL.User != nil (userinfo never recorded) */
	HTTP3_CLIENT_F_PASSWORD = 1 << 12, /* URL.User has a password set */
	HTTP3_CLIENT_F_OPAQUE = 1 << 13,   /* URL.Opaque non-empty */
};

/* One HTTP/3 request sent. Strings: method, scheme, url_host (URL.Host), path (URL.Path),
 * req_host (Request.Host). */
struct rec_http3_client {
	struct rec_span h;
	__u16 status; /* Response.StatusCode */
	__u8 method_len;
	__u8 scheme_len;
	__u8 url_host_len;
	__u8 path_len;
	__u8 req_host_len;
	__u8 strings[];
};
_Static_assert(__builtin_offsetof(struct rec_http3_client, strings) == 63, "rec_http3_client layout");

#endif /* BEETRACE_SHARED_HTTP3_H */
