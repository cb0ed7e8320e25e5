/* SPDX-License-Identifier: Apache-2.0 */
/*
 * records.h — the records BPF programs write to the ring buffer, shared by the BPF side and
 * read back by user space (src/probes/<library>/records.ts decodes them; the layout test in
 * tests/unit/probes/records-layout.test.ts compares every offset there with the BTF clang
 * produced from this file, so the two sides cannot drift).
 *
 * Plain C: fixed-width types, explicit padding, no kernel types, so a user-space C program
 * could include it too. Every record starts with a u32 `type` tag (one tagged stream, one
 * dispatcher). START records carry the span identity and request fields; END records carry
 * the span id, the end time and response fields.
 *
 * Times are bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME: keeps counting across suspend, so user
 * space converts with the same clock).
 */
#ifndef BEETRACE_SHARED_RECORDS_H
#define BEETRACE_SHARED_RECORDS_H

#include <linux/types.h>

/* W3C Trace Context (https://www.w3.org/TR/trace-context/#trace-id): 16-byte trace id,
 * 8-byte span (parent) id. */
#define BEE_TRACE_ID_SIZE 16
#define BEE_SPAN_ID_SIZE 8

/* Record tags. Values are unique across all probes (high byte = library), so one
 * dispatcher can route any record to its decoder. */
enum rec_type {
	REC_NETHTTP_SERVER_START = 0x0101,
	REC_NETHTTP_SERVER_END = 0x0102,
	REC_NETHTTP_CLIENT_START = 0x0103,
	REC_NETHTTP_CLIENT_END = 0x0104,
};

/* rec_start_hdr.flags */
enum rec_start_flags {
	/* parent_span_id is valid (an in-process parent was found) */
	REC_START_F_HAS_PARENT = 1 << 0,
	/* the parent was found through the context.Context chain, not the goroutine */
	REC_START_F_PARENT_BY_CTX = 1 << 1,
	/* a bpf_probe_read_user of a request field failed; that field is empty */
	REC_START_F_READ_ERROR = 1 << 2,
};

/* Common prefix of every START record. */
struct rec_start_hdr {
	__u32 type;      /* enum rec_type */
	__u32 flags;     /* enum rec_start_flags */
	__u32 pid;       /* thread-group id (host pid namespace) */
	__u32 tid;       /* kernel thread id that ran the entry */
	__u64 start_ns;  /* CLOCK_BOOTTIME */
	__u64 goroutine; /* runtime.g pointer of the calling goroutine */
	__u8 trace_id[BEE_TRACE_ID_SIZE];
	__u8 span_id[BEE_SPAN_ID_SIZE];
	__u8 parent_span_id[BEE_SPAN_ID_SIZE]; /* zero unless REC_START_F_HAS_PARENT */
};
_Static_assert(sizeof(struct rec_start_hdr) == 64, "rec_start_hdr layout");

/* Common prefix of every END record. */
struct rec_end_hdr {
	__u32 type;   /* enum rec_type */
	__u32 flags;  /* per record: enum rec_*_end_flags */
	__u64 end_ns; /* CLOCK_BOOTTIME */
	__u8 span_id[BEE_SPAN_ID_SIZE];
};
_Static_assert(sizeof(struct rec_end_hdr) == 24, "rec_end_hdr layout");

/*
 * String fields: `<name>_len` is the Go string's real length (clamped to u32), the buffer
 * holds min(len, sizeof buffer) bytes. len > sizeof buffer means truncated (also counted in
 * the object's `truncated_strings` counter). Bytes past min(len, size) are undefined.
 */
#define NETHTTP_METHOD_SIZE 16
#define NETHTTP_PATH_SIZE 256
#define NETHTTP_HOST_SIZE 128
#define NETHTTP_REMOTE_SIZE 64
#define NETHTTP_PATTERN_SIZE 128
#define NETHTTP_SCHEME_SIZE 8

/* rec_nethttp_server_start.req_flags */
enum rec_nethttp_server_req_flags {
	/* Request.TLS != nil: the request arrived over TLS (url.scheme https) */
	NETHTTP_SERVER_F_TLS = 1 << 0,
	/* the TLS field was read (its offset is known); without it the scheme is unknown */
	NETHTTP_SERVER_F_TLS_KNOWN = 1 << 1,
};

/* net/http.serverHandler.ServeHTTP entry. */
struct rec_nethttp_server_start {
	struct rec_start_hdr h;
	__u32 method_len;
	__u32 path_len;
	__u32 host_len;
	__u32 remote_len;
	__u16 proto_major; /* Request.ProtoMajor (Go int, clamped to u16) */
	__u16 proto_minor;
	__u32 req_flags; /* enum rec_nethttp_server_req_flags */
	char method[NETHTTP_METHOD_SIZE];
	char path[NETHTTP_PATH_SIZE];     /* URL.Path (decoded form) */
	char host[NETHTTP_HOST_SIZE];     /* Request.Host (Host header) */
	char remote[NETHTTP_REMOTE_SIZE]; /* Request.RemoteAddr "ip:port" */
};
_Static_assert(sizeof(struct rec_nethttp_server_start) == 552, "rec_nethttp_server_start layout");

/* rec_nethttp_server_end.h.flags */
enum rec_nethttp_server_end_flags {
	/* status was read: from *http.response (HTTP/1) or http2responseWriter.rws (HTTP/2) */
	NETHTTP_SERVER_END_F_STATUS = 1 << 0,
	/* the route pattern was read (pattern_mode != 0); pattern_len 0 = no pattern matched */
	NETHTTP_SERVER_END_F_PATTERN = 1 << 1,
	/* a bpf_probe_read_user of a response field failed */
	NETHTTP_SERVER_END_F_READ_ERROR = 1 << 2,
};

/* net/http.serverHandler.ServeHTTP return (a RET). */
struct rec_nethttp_server_end {
	struct rec_end_hdr h;
	__u32 status; /* response/http2responseWriterState status; 0 = no header written (200 follows) */
	__u32 pattern_len;
	char pattern[NETHTTP_PATTERN_SIZE]; /* ServeMux pattern, e.g. "GET /items/{id}" */
};
_Static_assert(sizeof(struct rec_nethttp_server_end) == 160, "rec_nethttp_server_end layout");

/* rec_nethttp_client_start.url_flags: what the URL holds but the record deliberately omits. */
enum rec_nethttp_client_url_flags {
	NETHTTP_URL_F_QUERY = 1 << 0,    /* URL.RawQuery non-empty (values never recorded) */
	NETHTTP_URL_F_USER = 1 << 1,     /* URL.User != nil (userinfo never recorded) */
	NETHTTP_URL_F_PASSWORD = 1 << 2, /* URL.User has a password set */
	NETHTTP_URL_F_OPAQUE = 1 << 3,   /* URL.Opaque non-empty (path is not the whole story) */
};

/* net/http.(*Transport).roundTrip entry. */
struct rec_nethttp_client_start {
	struct rec_start_hdr h;
	__u32 method_len;
	__u32 scheme_len;
	__u32 url_host_len;
	__u32 path_len;
	__u32 req_host_len;
	__u32 url_flags; /* enum rec_nethttp_client_url_flags */
	char method[NETHTTP_METHOD_SIZE];
	char scheme[NETHTTP_SCHEME_SIZE];
	char url_host[NETHTTP_HOST_SIZE]; /* URL.Host "host[:port]" */
	char path[NETHTTP_PATH_SIZE];     /* URL.Path (decoded form) */
	char req_host[NETHTTP_HOST_SIZE]; /* Request.Host (overrides the Host header) */
};
_Static_assert(sizeof(struct rec_nethttp_client_start) == 624, "rec_nethttp_client_start layout");

/* rec_nethttp_client_end.h.flags */
enum rec_nethttp_client_end_flags {
	NETHTTP_CLIENT_END_F_RESPONSE = 1 << 0, /* *Response != nil; status valid */
	NETHTTP_CLIENT_END_F_ERROR = 1 << 1,    /* error != nil; err_itab valid */
	NETHTTP_CLIENT_END_F_READ_ERROR = 1 << 2,
};

/* net/http.(*Transport).roundTrip return (a RET). */
struct rec_nethttp_client_end {
	struct rec_end_hdr h;
	__u32 status; /* Response.StatusCode */
	__u32 _pad0;
	__u64 err_itab; /* itab pointer of the returned error (names its dynamic type) */
};
_Static_assert(sizeof(struct rec_nethttp_client_end) == 40, "rec_nethttp_client_end layout");

#endif /* BEETRACE_SHARED_RECORDS_H */
