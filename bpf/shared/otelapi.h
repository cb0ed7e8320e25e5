/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otelapi.h — span records of the OpenTelemetry Go API probe (bpf/otelapi.bpf.c), read back by
 * src/probes/otelapi/ through layouts generated from this object's BTF.
 *
 * One record per span, emitted at (nonRecordingSpan).End. Attributes, events and links arrive
 * in several API calls during the span; BPF appends each to the span's `items` as it happens
 * (bounded, see the caps) and the record carries them as one packed string. Items, little-endian,
 * back to back, each starting with its enum otelapi_item byte:
 *
 *   OTELAPI_ITEM_ATTR:      u8 owner (enum otelapi_owner), u8 vtype (attribute.Type | OTELAPI_VT_*
 *                           marks), u8 key_len, key bytes, then the value by vtype:
 *                             BOOL, INT64, FLOAT64: u64 (attribute.Value.numeric as stored)
 *                             STRING:               u8 len, bytes
 *                             BOOLSLICE:            u8 n, n bytes (0/1)
 *                             INT64SLICE/FLOAT64SLICE: u8 n, n u64
 *                             STRINGSLICE:          u8 n, n × (u8 len, bytes)
 *                           any other type: no value (the decoder names it unsupported)
 *   OTELAPI_ITEM_EVENT:     u64 time (CLOCK_BOOTTIME), u8 name_len, name bytes
 *   OTELAPI_ITEM_EXCEPTION: u64 time, u8 msg_len, message bytes (RecordError: the error's text
 *                           when it is a string or the first string field of the struct a pointer
 *                           points at, as errors.New and fmt.Errorf make), u8 type_len, type bytes
 *                           (the error's Go type as reflect's String() names it, "*errors.errorString"),
 *                           u8 pkg_len, pkg bytes (its package path when the type is named and not a
 *                           pointer: the SDK then writes "pkgpath.Name"); both empty when unknown
 *   OTELAPI_ITEM_LINK:      u8 trace_id[16], u8 span_id[8]
 * Attributes with owner EVENT/LINK belong to the nearest event/link item before them.
 */
#ifndef BEETRACE_SHARED_OTELAPI_H
#define BEETRACE_SHARED_OTELAPI_H

#include <linux/types.h>
#include "span.h"

/* Caps (bytes kept) of the strings; each fits its u8 length field. */
#define OTELAPI_NAME_CAP 128
#define OTELAPI_SCOPE_NAME_CAP 128
#define OTELAPI_SCOPE_VERSION_CAP 64
#define OTELAPI_SCHEMA_URL_CAP 128
#define OTELAPI_STATUS_CAP 128
/* Items: a new item starts only below OTELAPI_ITEMS_CAP; one item is at most
 * OTELAPI_ITEM_MAX bytes (a string-slice attribute: 4 + key + 8 × (1 + element)), so
 * items_len < OTELAPI_ITEMS_CAP + OTELAPI_ITEM_MAX. */
#define OTELAPI_ITEMS_CAP 1392
#define OTELAPI_KEY_CAP 64
#define OTELAPI_VALUE_CAP 128     /* a string value */
#define OTELAPI_SLICE_MAX 8       /* elements kept of a slice value */
#define OTELAPI_ELEM_CAP 32       /* bytes kept of each string in a string slice */
#define OTELAPI_TYPE_CAP 64       /* an exception's type name and package path */
#define OTELAPI_ITEM_MAX 400
/* Per call: attributes kept of one SetAttributes / WithAttributes, options looked at. */
#define OTELAPI_ATTRS_PER_CALL 16
#define OTELAPI_OPTS_PER_CALL 4
#define OTELAPI_LINKS_PER_CALL 4

enum otelapi_item {
	OTELAPI_ITEM_ATTR = 1,
	OTELAPI_ITEM_EVENT = 2,
	OTELAPI_ITEM_EXCEPTION = 3,
	OTELAPI_ITEM_LINK = 4,
};

enum otelapi_owner {
	OTELAPI_OWNER_SPAN = 0,
	OTELAPI_OWNER_EVENT = 1,
	OTELAPI_OWNER_LINK = 2,
};

/* go.opentelemetry.io/otel/attribute.Type (attribute/value.go, the same numbers in 1.0.1 and
 * 1.47.0; BYTESLICE, SLICE and MAP came later and are stored without a value). */
enum otelapi_vtype {
	OTELAPI_VT_BOOL = 1,
	OTELAPI_VT_INT64 = 2,
	OTELAPI_VT_FLOAT64 = 3,
	OTELAPI_VT_STRING = 4,
	OTELAPI_VT_BOOLSLICE = 5,
	OTELAPI_VT_INT64SLICE = 6,
	OTELAPI_VT_FLOAT64SLICE = 7,
	OTELAPI_VT_STRINGSLICE = 8,
	/* marks or'ed into the vtype byte */
	OTELAPI_VT_TRUNCATED = 0x40, /* the key or the value was cut at its cap */
	OTELAPI_VT_MASK = 0x3f,
};

/* rec_otelapi_span flags (bits 8-15 of rec_span.flags). */
enum rec_otelapi_flags {
	/* something did not fit: `dropped` items (attributes, events, links) were not stored */
	OTELAPI_F_DROPPED = 1 << 8,
	/* some key or value was cut at its cap (`truncated_values` of them) */
	OTELAPI_F_VALUES_TRUNCATED = 1 << 9,
	/* a span option could not be interpreted (a timestamp, an unknown option type) */
	OTELAPI_F_OPTION_IGNORED = 1 << 10,
};

/* One span made with the OTel API's global (SDK-less) tracer. Strings: name, scope_name (the
 * tracer's name), scope_version, schema_url (from its TracerOptions), status_desc, items. */
struct rec_otelapi_span {
	struct rec_span h;
	__u8 kind;        /* trace.SpanKind: 0 unspecified (internal), 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
	__u8 status_code; /* codes.Code: 0 Unset, 1 Error, 2 Ok */
	__u16 dropped;          /* attributes, events and links not stored (items full, per-call caps) */
	__u16 truncated_values; /* keys and values cut at their caps */
	__u8 name_len;
	__u8 scope_name_len;
	__u8 scope_version_len;
	__u8 schema_url_len;
	__u8 status_desc_len;
	__u16 items_len;
	__u8 strings[];
};
_Static_assert(__builtin_offsetof(struct rec_otelapi_span, strings) == 70, "rec_otelapi_span layout");

#endif /* BEETRACE_SHARED_OTELAPI_H */
