/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grpc.h — span records of the google.golang.org/grpc probes (bpf/grpc.bpf.c), read back by
 * src/probes/grpc/ through layouts generated from this object's BTF.
 *
 * Strings follow the fixed fields, packed in the order of their `*_len` fields; a length (u8)
 * is the number of bytes stored (at most the string's cap below); rec_span.truncated bit i says
 * string i (in that order) was longer.
 */
#ifndef BEETRACE_SHARED_GRPC_H
#define BEETRACE_SHARED_GRPC_H

#include <linux/types.h>
#include "span.h"

/* Caps of the strings (bytes kept); each fits its u8 length field. */
#define GRPC_METHOD_CAP 255 /* "/package.Service/Method" */
#define GRPC_TARGET_CAP 128 /* ClientConn.target: "dns:///host:port", "host:port" */
#define GRPC_TRACESTATE_CAP 255

/* rec_grpc_server flags (bits 8-15 of rec_span.flags). */
enum rec_grpc_server_flags {
	/* code was read from the *status.Status the server wrote (transport WriteStatus) */
	GRPC_SERVER_F_STATUS = 1 << 8,
	/* peer_ip/peer_port hold the connection's remote TCP address */
	GRPC_SERVER_F_PEER = 1 << 9,
	/* stream_id holds the request's HTTP/2 stream id (grpc's own transport; not through ServeHTTP) */
	GRPC_SERVER_F_STREAM_ID = 1 << 10,
	/* no traceparent came: the parent is the client span another process traced by the same
	 * beetrace had in flight on the peer end and stream id (include/conn_ctx.bpf.h) */
	GRPC_SERVER_F_CONN_JOINED = 1 << 11,
};

/* One RPC served (grpc.(*Server).handleStream → the transport's WriteStatus). Strings: method
 * (the full method name as sent, "/package.Service/Method"), tracestate (the W3C tracestate that
 * came with a valid traceparent in the request metadata). */
struct rec_grpc_server {
	struct rec_span h;
	__u32 code;        /* codes.Code written, GRPC_SERVER_F_STATUS */
	__u32 stream_id;   /* GRPC_SERVER_F_STREAM_ID */
	__u16 peer_port;   /* GRPC_SERVER_F_PEER */
	__u8 peer_ip_size; /* 4 or 16 (net.IP as stored; not a string length: no _len suffix) */
	__u8 peer_ip[16];
	__u8 method_len;
	__u8 tracestate_len;
	__u8 strings[];
};
/* Strings start at offsetof(strings), not sizeof (which rounds up to the 8-byte alignment). */
_Static_assert(__builtin_offsetof(struct rec_grpc_server, strings) == 85, "rec_grpc_server layout");

/* rec_grpc_client flags (bits 8-15 of rec_span.flags). */
enum rec_grpc_client_flags {
	/* code is the call's status code (a nil error, io.EOF or a grpc status error) */
	GRPC_CLIENT_F_STATUS = 1 << 8,
	/* the call ended with an error that is not a grpc status (status.Code(err) = UNKNOWN) */
	GRPC_CLIENT_F_OTHER_ERROR = 1 << 9,
	/* the stream was never created: the span ends at newClientStream's return */
	GRPC_CLIENT_F_NOT_STARTED = 1 << 10,
	/* peer_ip/peer_port hold the connection's remote TCP address (http2Client.remoteAddr) */
	GRPC_CLIENT_F_PEER = 1 << 11,
	/* local_ip/local_port hold the connection's local TCP address (http2Client.localAddr) */
	GRPC_CLIENT_F_LOCAL = 1 << 12,
	/* stream_id holds the call's HTTP/2 stream id */
	GRPC_CLIENT_F_STREAM_ID = 1 << 13,
};

/* One RPC made (grpc.newClientStream → (*clientStream).finish; unary calls and streams alike),
 * with the connection and HTTP/2 stream of its attempt when it had one. Strings: method (full
 * method name), target (ClientConn.target). */
struct rec_grpc_client {
	struct rec_span h;
	__u32 code;         /* GRPC_CLIENT_F_STATUS */
	__u32 stream_id;    /* GRPC_CLIENT_F_STREAM_ID */
	__u16 peer_port;    /* GRPC_CLIENT_F_PEER */
	__u16 local_port;   /* GRPC_CLIENT_F_LOCAL */
	__u8 peer_ip_size;  /* 4 or 16 */
	__u8 local_ip_size; /* 4 or 16 */
	__u8 peer_ip[16];
	__u8 local_ip[16];
	__u8 method_len;
	__u8 target_len;
	__u8 strings[];
};
_Static_assert(__builtin_offsetof(struct rec_grpc_client, strings) == 104, "rec_grpc_client layout");

#endif /* BEETRACE_SHARED_GRPC_H */
