/* SPDX-License-Identifier: Apache-2.0 */
/*
 * go_http.bpf.h — what the HTTP client probes (net/http's, quic-go's HTTP/3) read of a std
 * *http.Request the same way: its method, URL and Host as record strings, and whether the URL
 * has a query, an opaque part or userinfo (never their values).
 *
 * The offsets are `volatile const` globals user space sets by name from the probes' field
 * declarations (net/http.Request, net/url.URL, net/url.Userinfo); an object that includes this
 * header declares them through it.
 */
#ifndef BEETRACE_GO_HTTP_BPF_H
#define BEETRACE_GO_HTTP_BPF_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "go_types.bpf.h"
#include "record.bpf.h"
#include "go_view.bpf.h"

/* net/http.Request */
volatile const __u32 req_method_off = GO_OFF_UNSET; /* Method string */
volatile const __u32 req_url_off = GO_OFF_UNSET;    /* URL *url.URL */
volatile const __u32 req_host_off = GO_OFF_UNSET;   /* Host string */
/* net/url.URL */
volatile const __u32 url_scheme_off = GO_OFF_UNSET;    /* Scheme string */
volatile const __u32 url_opaque_off = GO_OFF_UNSET;    /* Opaque string */
volatile const __u32 url_user_off = GO_OFF_UNSET;      /* User *Userinfo */
volatile const __u32 url_host_off = GO_OFF_UNSET;      /* Host string */
volatile const __u32 url_path_off = GO_OFF_UNSET;      /* Path string */
volatile const __u32 url_raw_query_off = GO_OFF_UNSET; /* RawQuery string */
/* net/url.Userinfo */
volatile const __u32 userinfo_password_set_off = GO_OFF_UNSET; /* passwordSet bool (optional) */

/* String caps (bytes) of the request strings; longer values are cut and marked truncated. */
#define BEE_HTTP_METHOD_CAP 16
#define BEE_HTTP_SCHEME_CAP 8
#define BEE_HTTP_HOST_CAP 128
#define BEE_HTTP_PATH_CAP 255

/* Record flag bits the URL sets; each client record's flag enum gives its own names to these
 * values (and asserts them). */
enum bee_http_url_flags {
	BEE_HTTP_URL_QUERY = 1 << 10,    /* URL.RawQuery non-empty */
	BEE_HTTP_URL_USER = 1 << 11,     /* URL.User != nil */
	BEE_HTTP_URL_PASSWORD = 1 << 12, /* URL.User has a password set */
	BEE_HTTP_URL_OPAQUE = 1 << 13,   /* URL.Opaque non-empty */
};

/* The five string lengths of a client record, declared in this order by each such record. */
struct bee_http_request_lens {
	__u8 method_len;
	__u8 scheme_len;
	__u8 url_host_len;
	__u8 path_len;
	__u8 req_host_len;
};

/* The views (go_view.bpf.h) bee_put_client_request fills: the request and its URL, each in one
 * read instead of one per field (their earlier contents are overwritten). */
#define BEE_HTTP_REQ_VIEW 0
#define BEE_HTTP_URL_VIEW 1

/*
 * Appends the request's Method, URL.Scheme, URL.Host, URL.Path and Host at *pos (truncation
 * bits 0-4) and returns the BEE_HTTP_URL_* flags; *err is set on a failed read.
 */
static __always_inline __u16 bee_put_client_request(__u8 *buf, __u32 *pos, __u64 req, struct bee_http_request_lens *lens, __u16 *truncated, int *err)
{
	__u16 flags = 0;
	__u32 n = go_view_max(go_view_end(req_method_off, 16), go_view_end(req_url_off, 8));
	go_view_read(BEE_HTTP_REQ_VIEW, req, go_view_max(n, go_view_end(req_host_off, 16)));
	lens->method_len = bee_put_go_str(buf, pos, go_view_string(BEE_HTTP_REQ_VIEW, req_method_off, err), BEE_HTTP_METHOD_CAP, truncated, 0, err);
	lens->scheme_len = 0;
	lens->url_host_len = 0;
	lens->path_len = 0;
	__u64 url = go_view_u64(BEE_HTTP_REQ_VIEW, req_url_off, err);
	if (url) {
		__u32 u = go_view_max(go_view_end(url_scheme_off, 16), go_view_end(url_host_off, 16));
		u = go_view_max(u, go_view_end(url_path_off, 16));
		u = go_view_max(u, go_view_end(url_raw_query_off, 16));
		u = go_view_max(u, go_view_end(url_opaque_off, 16));
		go_view_read(BEE_HTTP_URL_VIEW, url, go_view_max(u, go_view_end(url_user_off, 8)));
		lens->scheme_len = bee_put_go_str(buf, pos, go_view_string(BEE_HTTP_URL_VIEW, url_scheme_off, err), BEE_HTTP_SCHEME_CAP, truncated, 1, err);
		lens->url_host_len = bee_put_go_str(buf, pos, go_view_string(BEE_HTTP_URL_VIEW, url_host_off, err), BEE_HTTP_HOST_CAP, truncated, 2, err);
		lens->path_len = bee_put_go_str(buf, pos, go_view_string(BEE_HTTP_URL_VIEW, url_path_off, err), BEE_HTTP_PATH_CAP, truncated, 3, err);
		/* Only whether these exist: query values and userinfo never leave the process. */
		if (go_view_string(BEE_HTTP_URL_VIEW, url_raw_query_off, err).len > 0)
			flags |= BEE_HTTP_URL_QUERY;
		if (go_view_string(BEE_HTTP_URL_VIEW, url_opaque_off, err).len > 0)
			flags |= BEE_HTTP_URL_OPAQUE;
		__u64 user = go_view_u64(BEE_HTTP_URL_VIEW, url_user_off, err);
		if (user) {
			flags |= BEE_HTTP_URL_USER;
			if (userinfo_password_set_off != GO_OFF_UNSET) {
				__u8 set = 0;
				if (bpf_probe_read_user(&set, 1, (const void *)(user + userinfo_password_set_off)) != 0)
					*err = 1;
				else if (set)
					flags |= BEE_HTTP_URL_PASSWORD;
			}
		}
	}
	lens->req_host_len = bee_put_go_str(buf, pos, go_view_string(BEE_HTTP_REQ_VIEW, req_host_off, err), BEE_HTTP_HOST_CAP, truncated, 4, err);
	return flags;
}
#endif
