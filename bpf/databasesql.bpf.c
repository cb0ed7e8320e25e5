// SPDX-License-Identifier: Apache-2.0
/*
 * databasesql.bpf.c — one CLIENT span per database/sql call, whatever the driver:
 *   (*DB|*Conn|*Tx).QueryContext, .ExecContext, .PrepareContext, (*Stmt).QueryContext,
 *   (*Stmt).ExecContext, (*DB|*Conn).BeginTx, (*Tx).Commit, (*Tx).rollback (Rollback inlines to it).
 * Every other entry point funnels into one of these in Go 1.17-1.27 (database/sql/sql.go:
 * Query → QueryContext, QueryRow(Context) → QueryContext, Exec → ExecContext, Prepare →
 * PrepareContext, Begin → BeginTx), so probing only these gives one span per user call; none
 * of them calls another (they go to the unexported queryDC/execDC/prepareDC/beginDC).
 *
 * Where the probes sit (docs/probe-placement.md): the entry program at the first emulated
 * instruction of the prologue (the JBE to morestack); the end program at every RET of the
 * function (no end marker: database/sql calls nothing on the same goroutine right after these
 * return). The entry keeps the start time, ids, the DB and the statement text's location per
 * goroutine; the end reads the clock first, then the text, the driver's identity and the
 * returned error, and emits one record (bpf/shared/databasesql.h).
 *
 * The driver's identity is read from runtime type descriptors, which hold plain pointers for
 * what is read here (itab._type, PtrType.Elem, StructType.PkgPath, StructField.Name), so it needs
 * no PIE load bias and no symbol table: the import path of the package defining DB.connector's
 * concrete type (a driver's own driver.Connector, sql.Open's database/sql.dsnConnector), and for
 * a dsnConnector the driver.Driver behind it. User space maps it to db.system.name. A driver
 * whose type is an empty struct (lib/pq's Driver) names no package: it is recognised by where its
 * Open method's code lies relative to (*dsnConnector).Connect's (delta_* below).
 *
 * Struct field offsets and switches are `volatile const` globals user space sets before load.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "include/go_abi.bpf.h"
#include "include/events.bpf.h"
#include "include/go_types.bpf.h"
#include "include/span.bpf.h"
#include "include/go_context.bpf.h"
#include "include/record.bpf.h"
#include "include/slots.bpf.h"
#include "shared/span.h"
#include "shared/databasesql.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(__builtin_offsetof(struct rec_databasesql, strings) + DATABASESQL_QUERY_CAP + DATABASESQL_PKG_CAP +
			       DATABASESQL_PKG_CAP + DATABASESQL_FIELD_CAP <= BEE_POS_MASK,
	       "record fits the scratch bounds");

/* ---- offsets of Go struct fields (bytes from the struct start) ---- */
volatile const __u32 db_connector_off = GO_OFF_UNSET;     /* database/sql.DB.connector driver.Connector */
volatile const __u32 dsnconn_driver_off = GO_OFF_UNSET;   /* database/sql.dsnConnector.driver driver.Driver */
volatile const __u32 conn_db_off = GO_OFF_UNSET;          /* database/sql.Conn.db *DB */
volatile const __u32 tx_db_off = GO_OFF_UNSET;            /* database/sql.Tx.db *DB */
volatile const __u32 stmt_db_off = GO_OFF_UNSET;          /* database/sql.Stmt.db *DB */
volatile const __u32 stmt_query_off = GO_OFF_UNSET;       /* database/sql.Stmt.query string */

/*
 * Drivers whose descriptors name no package (enum databasesql_driver), known by where their Open
 * method's code is: the entry of `(*T).Open` minus the entry of database/sql.(*dsnConnector).Connect,
 * set by user space from the function table (0 = not linked). At run time both addresses are read
 * from itabs (a dsnConnector's driver.Connector itab, its driver's driver.Driver itab: Fun[0] of
 * each, their only or first method), so the PIE load bias cancels out.
 */
volatile const __s64 delta_lib_pq = 0;
volatile const __s64 delta_mattn_sqlite3 = 0;
volatile const __s64 delta_mysql = 0;

/* ---- switches ---- */
volatile const __u32 statement_mode = DATABASESQL_STATEMENT_SANITIZED; /* enum databasesql_statement */

/* runtime.itab's Fun (GO_ITAB_TYPE_OFF, go_types.bpf.h, has the layout). */
#define GO_ITAB_FUN_OFF 24
/* internal/abi.StructType.PkgPath (a Name: one *byte), see go_types.bpf.h */
#define GO_STRUCTTYPE_PKGPATH_OFF 48

struct dbsql_call {
	__u64 recv;      /* receiver pointer: identifies the call (morestack re-entry check) */
	__u64 db;        /* *sql.DB behind the receiver, or 0 */
	__u64 text_ptr;  /* statement text {ptr, len}, or 0 */
	__s64 text_len;
	__u64 start_ns;  /* CLOCK_BOOTTIME, read first thing at entry */
	struct span_ctx sc;
	__u8 parent_span_id[BEE_SPAN_ID_SIZE];
	__u16 flags; /* REC_SPAN_F_HAS_PARENT, REC_SPAN_F_PARENT_BY_CTX, trace flags */
	__u8 op;
	__u8 recv_kind;
};

/* rollback calls on a Tx that had already ended (ErrTxDone): no span, counted here */
__u64 rollback_after_done = 0;

/* LRU: a call that never returns (a panic in a driver) must not fill the map for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BEE_LRU_FLAGS);
	__uint(max_entries, 16384);
	__type(key, __u64); /* goroutine */
	__type(value, struct dbsql_call);
} databasesql_calls SEC(".maps");

/* The calls in flight by goroutine in slots (bpf/include/slots.bpf.h) in front of the map: an
 * LRU update, lookup and delete per query otherwise. */
#define DBSQL_SLOT_BITS 12
volatile const __u32 databasesql_slot_mask = (1u << DBSQL_SLOT_BITS) - 1; /* BEETRACE_SERVER_SLOTS narrows it */
BEE_SLOT_TABLE(dbsql_slot, struct dbsql_call, st, databasesql_slots, dbsql_slot_of, DBSQL_SLOT_BITS, databasesql_slot_mask)
struct databasesql_map_fill {
	__s64 calls;
};
BEE_FILL_COUNTS(struct databasesql_map_fill, databasesql_map_fill, databasesql_fill)
/* dbsql_call_of/_drop/_store/_get/_take_any: slots.bpf.h. */
BEE_CALL_TABLE(dbsql_call, struct dbsql_call, dbsql_slot, dbsql_slot_of, databasesql_calls, BEE_FILL_FIELD(databasesql_fill, calls))

/* Makes the record struct and enums appear in the object's BTF (user space generates its
 * decoder's layout from it). */
const struct rec_databasesql *databasesql_btf_rec __attribute__((unused));
const enum rec_type *databasesql_btf_type __attribute__((unused));
const enum rec_span_flags *databasesql_btf_span_flags __attribute__((unused));
const enum rec_databasesql_flags *databasesql_btf_flags __attribute__((unused));
const enum databasesql_op *databasesql_btf_op __attribute__((unused));
const enum databasesql_recv *databasesql_btf_recv __attribute__((unused));
const enum databasesql_statement *databasesql_btf_statement __attribute__((unused));
const enum databasesql_driver *databasesql_btf_driver __attribute__((unused));

/* The *sql.DB behind a receiver (its `db` field; the receiver itself for a *DB). */
static __always_inline __u64 db_of(__u64 recv, __u32 kind, int *err)
{
	__u32 off = GO_OFF_UNSET;
	if (kind == DATABASESQL_RECV_DB)
		return recv;
	if (kind == DATABASESQL_RECV_CONN)
		off = conn_db_off;
	else if (kind == DATABASESQL_RECV_TX)
		off = tx_db_off;
	else if (kind == DATABASESQL_RECV_STMT)
		off = stmt_db_off;
	if (off == GO_OFF_UNSET || recv == 0)
		return 0;
	return go_read_u64(recv + off, err);
}

/*
 * Common entry. text: the query string argument's {ptr, len} (0 for calls without one);
 * ctx_data: the context.Context argument's data word (0 without one).
 */
static __always_inline int dbsql_entry(struct pt_regs *ctx, __u8 op, __u8 kind, __u64 text_ptr, __s64 text_len, __u64 ctx_data)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	__u64 recv = GO_PARAM1(ctx);
	int err = 0;

	struct dbsql_call st = {};
	int stale = dbsql_call_get(g, &st);
	if (stale) {
		if (st.recv == recv && st.op == op)
			return 0; /* morestack re-ran the prologue: already recorded */
		/* The earlier call on this goroutine never returned (a panic in the driver). */
		bee_count(&entry_replaced);
		__builtin_memset(&st, 0, sizeof(st));
	}
	st.start_ns = now;
	st.recv = recv;
	st.op = op;
	st.recv_kind = kind;
	st.db = db_of(recv, kind, &err);
	if (kind == DATABASESQL_RECV_STMT && stmt_query_off != GO_OFF_UNSET && recv) {
		struct go_string s = {};
		if (bpf_probe_read_user(&s, sizeof(s), (const void *)(recv + stmt_query_off)) == 0) {
			text_ptr = s.ptr;
			text_len = s.len;
		} else {
			err = 1;
		}
	}
	st.text_ptr = text_ptr;
	st.text_len = text_len;

	st.flags = bee_child_span(g, ctx_data, &st.sc, st.parent_span_id);
	if (err)
		bee_count(&read_errors);
	st.start_ns = bpf_ktime_get_boot_ns(); /* after this program's own work: the tracer's time, not the call's */
	if (dbsql_call_store(g, &st, stale) != 0)
		bee_count(&inflight_full);
	return 0;
}

/*
 * Appends the bytes of a runtime Name (internal/abi.Name: one flags byte, the length as a
 * uvarint, then the bytes; the varint encoding since Go 1.17) to buf. Lengths over 2^14 are
 * not read (no package path or field name is that long).
 */
static __always_inline __u8 put_name(__u8 *buf, __u32 *pos, __u64 name, __u32 cap, __u16 *truncated, int bit, int *err)
{
	__u8 hdr[3] = {};
	if (name == 0)
		return 0;
	if (bpf_probe_read_user(hdr, sizeof(hdr), (const void *)name) != 0) {
		*err = 1;
		return 0;
	}
	__u32 len = hdr[1] & 0x7f;
	__u64 data = name + 2;
	if (hdr[1] & 0x80) {
		if (hdr[2] & 0x80)
			return 0;
		len |= (__u32)hdr[2] << 7;
		data = name + 3;
	}
	if (len == 0)
		return 0;
	__u32 n = cap;
	if (len <= cap) {
		n = len;
	} else {
		*truncated |= (__u16)(1u << bit);
		bee_count(&truncated_strings);
	}
	__u32 p = *pos & BEE_POS_MASK;
	if (n > cap) /* restates the bound for the verifier */
		n = cap;
	if (bpf_probe_read_user(buf + p, n, (const void *)data) != 0) {
		*err = 1;
		return 0;
	}
	*pos = p + n;
	return (__u8)n;
}

/* The struct type a type descriptor names, through one pointer (T or *T), or 0. */
static __always_inline __u64 struct_type_of(__u64 typ, int *err)
{
	__u8 kind = go_type_kind(typ);
	if (kind == GO_KIND_POINTER) {
		typ = go_read_u64(typ + GO_PTRTYPE_ELEM_OFF, err);
		kind = go_type_kind(typ);
	}
	return kind == GO_KIND_STRUCT ? typ : 0;
}

/* The name of a struct type's first field (its Name's address), or 0. */
static __always_inline __u64 first_field_name(__u64 st, int *err)
{
	__u64 fields = go_read_u64(st + GO_STRUCTTYPE_FIELDS_OFF, err);
	__s64 n = (__s64)go_read_u64(st + GO_STRUCTTYPE_FIELDS_OFF + 8, err);
	if (!fields || n <= 0)
		return 0;
	return go_read_u64(fields, err); /* StructField.Name at 0 */
}

/*
 * Appends what identifies the dynamic type behind an interface's itab: the package path of its
 * struct type, or, for a struct without unexported fields (PkgPath is then empty), the name of its
 * first field with *by_field set. Returns the bytes stored.
 */
static __always_inline __u8 put_iface_identity(__u8 *buf, __u32 *pos, __u64 itab, __u16 *truncated, int bit, int *by_field, int *err)
{
	if (!itab)
		return 0;
	__u64 st = struct_type_of(go_read_u64(itab + GO_ITAB_TYPE_OFF, err), err);
	if (!st)
		return 0;
	__u64 pkg = go_read_u64(st + GO_STRUCTTYPE_PKGPATH_OFF, err);
	if (pkg)
		return put_name(buf, pos, pkg, DATABASESQL_PKG_CAP, truncated, bit, err);
	*by_field = 1;
	return put_name(buf, pos, first_field_name(st, err), DATABASESQL_PKG_CAP, truncated, bit, err);
}

/* true when buf[p..p+n) is "database/sql": sql.Open's dsnConnector, which holds the driver. */
static __always_inline int is_database_sql(const __u8 *buf, __u32 p, __u8 n)
{
	const char want[] = "database/sql";
	if (n != sizeof(want) - 1)
		return 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(want) - 1; i++)
		if (buf[(p + i) & BEE_POS_MASK] != (__u8)want[i])
			return 0;
	return 1;
}

/*
 * database/sql's ErrTxDone (sql.go: errors.New("sql: transaction has already been committed or
 * rolled back")): what rollback returns for a Tx that already ended. It is not a rollback at all:
 * the `defer tx.Rollback()` idiom after Commit, and Tx.awaitDone's rollback when the Tx's context
 * ends after Commit, both get it. Its text is the same in every Go release.
 */
static __always_inline int is_err_tx_done(__u64 err_tab, __u64 err_data)
{
	const char want[] = "sql: transaction has already been committed or rolled back";
	int err = 0;
	__u64 hdr = go_any_text(go_read_u64(err_tab + GO_ITAB_TYPE_OFF, &err), err_data);
	if (err || !hdr)
		return 0;
	struct go_string s = {};
	if (bpf_probe_read_user(&s, sizeof(s), (const void *)hdr) != 0 || s.len != sizeof(want) - 1)
		return 0;
	char got[sizeof(want) - 1] = {};
	if (bpf_probe_read_user(got, sizeof(got), (const void *)s.ptr) != 0)
		return 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(got); i++)
		if (got[i] != want[i])
			return 0;
	return 1;
}

/* Common end, at a RET: err_tab/err_data = the returned error interface. */
static __always_inline int dbsql_return(struct pt_regs *ctx, __u64 err_tab, __u64 err_data)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 g = GO_GOROUTINE(ctx);
	int err = 0;

	struct dbsql_call st = {};
	if (!dbsql_call_take_any(g, &st)) {
		bee_count(&return_without_entry);
		return 0;
	}
	if (st.op == DATABASESQL_OP_ROLLBACK && err_tab && is_err_tx_done(err_tab, err_data)) {
		bee_count(&rollback_after_done);
		return 0;
	}

	__u8 *buf = bee_scratch_buf();
	if (!buf)
		return 0;
	struct rec_databasesql *r = (struct rec_databasesql *)buf;
	__u16 flags = st.flags | REC_SPAN_F_END_AT_RET;
	__u16 truncated = 0;
	r->h.type = REC_DATABASESQL;
	r->h.start_ns = st.start_ns;
	r->h.end_ns = now;
	__builtin_memcpy(r->h.trace_id, st.sc.trace_id, BEE_TRACE_ID_SIZE);
	__builtin_memcpy(r->h.span_id, st.sc.span_id, BEE_SPAN_ID_SIZE);
	if (st.flags & REC_SPAN_F_HAS_PARENT)
		__builtin_memcpy(r->h.parent_span_id, st.parent_span_id, BEE_SPAN_ID_SIZE);
	else
		__builtin_memset(r->h.parent_span_id, 0, BEE_SPAN_ID_SIZE);
	r->op = st.op;
	r->recv = st.recv_kind;
	if (statement_mode == DATABASESQL_STATEMENT_SANITIZED)
		flags |= DATABASESQL_F_SANITIZE;
	else if (statement_mode == DATABASESQL_STATEMENT_OFF)
		flags |= DATABASESQL_F_TEXT_OFF;

	__u32 pos = __builtin_offsetof(struct rec_databasesql, strings);
	/* The statement text (its bytes are the caller's string or Stmt.query: still alive here). */
	r->query_len = 0;
	if (st.text_ptr && st.text_len > 0) {
		__u32 n = DATABASESQL_QUERY_CAP;
		if ((__u64)st.text_len <= DATABASESQL_QUERY_CAP) {
			n = (__u32)st.text_len;
		} else {
			truncated |= 1u << 0;
			bee_count(&truncated_strings);
		}
		__u32 p = pos & BEE_POS_MASK;
		if (n > DATABASESQL_QUERY_CAP)
			n = DATABASESQL_QUERY_CAP;
		if (bpf_probe_read_user(buf + p, n, (const void *)st.text_ptr) == 0) {
			pos = p + n;
			r->query_len = (__u16)n;
		} else {
			err = 1;
		}
	}

	/* The driver: DB.connector's dynamic type, or the driver behind sql.Open's dsnConnector. */
	r->driver_len = 0;
	r->driver_id = DATABASESQL_DRIVER_UNKNOWN;
	if (st.db && db_connector_off != GO_OFF_UNSET) {
		struct go_iface conn = {};
		if (bpf_probe_read_user(&conn, sizeof(conn), (const void *)(st.db + db_connector_off)) != 0) {
			err = 1;
		} else if (conn.tab) {
			int by_field = 0;
			__u32 at = pos;
			__u8 n = put_iface_identity(buf, &pos, conn.tab, &truncated, 1, &by_field, &err);
			if (!by_field && is_database_sql(buf, at, n) && dsnconn_driver_off != GO_OFF_UNSET && conn.data) {
				/* dsnConnector{dsn string; driver driver.Driver}: the driver decides. */
				pos = at;
				n = 0;
				flags |= DATABASESQL_F_DRIVER_SQL;
				__u64 drv_tab = go_read_u64(conn.data + dsnconn_driver_off, &err);
				n = put_iface_identity(buf, &pos, drv_tab, &truncated, 1, &by_field, &err);
				if (drv_tab) {
					__s64 delta = (__s64)(go_read_u64(drv_tab + GO_ITAB_FUN_OFF, &err) -
							      go_read_u64(conn.tab + GO_ITAB_FUN_OFF, &err));
					if (delta_lib_pq && delta == delta_lib_pq)
						r->driver_id = DATABASESQL_DRIVER_LIB_PQ;
					else if (delta_mattn_sqlite3 && delta == delta_mattn_sqlite3)
						r->driver_id = DATABASESQL_DRIVER_MATTN_SQLITE3;
					else if (delta_mysql && delta == delta_mysql)
						r->driver_id = DATABASESQL_DRIVER_MYSQL;
				}
			}
			if (by_field)
				flags |= DATABASESQL_F_DRIVER_FIELD;
			r->driver_len = n;
		}
	}

	/* The error's dynamic type: package path and first field name. */
	r->err_pkg_len = 0;
	r->err_field_len = 0;
	if (err_tab) {
		flags |= DATABASESQL_F_ERROR;
		__u64 st_type = struct_type_of(go_read_u64(err_tab + GO_ITAB_TYPE_OFF, &err), &err);
		if (st_type) {
			__u64 pkg = go_read_u64(st_type + GO_STRUCTTYPE_PKGPATH_OFF, &err);
			r->err_pkg_len = put_name(buf, &pos, pkg, DATABASESQL_PKG_CAP, &truncated, 2, &err);
			r->err_field_len = put_name(buf, &pos, first_field_name(st_type, &err), DATABASESQL_FIELD_CAP, &truncated, 3, &err);
		}
	}
	bee_finish_record(buf, pos, flags, truncated, err);
	return 0;
}

/*
 * Entries. Register ABI (go_abi.bpf.h): receiver RAX; ctx context.Context = {tab RBX, data RCX};
 * query string = {ptr RDI, len RSI}; the variadic args slice follows (not read).
 *   func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*Rows, error)
 *   func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (Result, error)
 *   func (db *DB) PrepareContext(ctx context.Context, query string) (*Stmt, error)
 * and the same for *Conn and *Tx.
 */
#define DBSQL_TEXT_ENTRY(fn, op, kind)                                                               \
	SEC("uprobe")                                                                                \
	int fn(struct pt_regs *ctx)                                                                  \
	{                                                                                            \
		return dbsql_entry(ctx, op, kind, GO_PARAM4(ctx), (__s64)GO_PARAM5(ctx), GO_PARAM3(ctx)); \
	}

DBSQL_TEXT_ENTRY(databasesql_db_query, DATABASESQL_OP_QUERY, DATABASESQL_RECV_DB)
DBSQL_TEXT_ENTRY(databasesql_db_exec, DATABASESQL_OP_EXEC, DATABASESQL_RECV_DB)
DBSQL_TEXT_ENTRY(databasesql_db_prepare, DATABASESQL_OP_PREPARE, DATABASESQL_RECV_DB)
DBSQL_TEXT_ENTRY(databasesql_conn_query, DATABASESQL_OP_QUERY, DATABASESQL_RECV_CONN)
DBSQL_TEXT_ENTRY(databasesql_conn_exec, DATABASESQL_OP_EXEC, DATABASESQL_RECV_CONN)
DBSQL_TEXT_ENTRY(databasesql_conn_prepare, DATABASESQL_OP_PREPARE, DATABASESQL_RECV_CONN)
DBSQL_TEXT_ENTRY(databasesql_tx_query, DATABASESQL_OP_QUERY, DATABASESQL_RECV_TX)
DBSQL_TEXT_ENTRY(databasesql_tx_exec, DATABASESQL_OP_EXEC, DATABASESQL_RECV_TX)
DBSQL_TEXT_ENTRY(databasesql_tx_prepare, DATABASESQL_OP_PREPARE, DATABASESQL_RECV_TX)

/*
 *   func (s *Stmt) QueryContext(ctx context.Context, args ...any) (*Rows, error)
 *   func (s *Stmt) ExecContext(ctx context.Context, args ...any) (Result, error)
 * s = RAX, ctx = {RBX, RCX}; the text is Stmt.query.
 */
SEC("uprobe")
int databasesql_stmt_query(struct pt_regs *ctx)
{
	return dbsql_entry(ctx, DATABASESQL_OP_QUERY, DATABASESQL_RECV_STMT, 0, 0, GO_PARAM3(ctx));
}

SEC("uprobe")
int databasesql_stmt_exec(struct pt_regs *ctx)
{
	return dbsql_entry(ctx, DATABASESQL_OP_EXEC, DATABASESQL_RECV_STMT, 0, 0, GO_PARAM3(ctx));
}

/*   func (db *DB) BeginTx(ctx context.Context, opts *TxOptions) (*Tx, error)   (and *Conn) */
SEC("uprobe")
int databasesql_db_begin(struct pt_regs *ctx)
{
	return dbsql_entry(ctx, DATABASESQL_OP_BEGIN, DATABASESQL_RECV_DB, 0, 0, GO_PARAM3(ctx));
}

SEC("uprobe")
int databasesql_conn_begin(struct pt_regs *ctx)
{
	return dbsql_entry(ctx, DATABASESQL_OP_BEGIN, DATABASESQL_RECV_CONN, 0, 0, GO_PARAM3(ctx));
}

/*   func (tx *Tx) Commit() error: tx = RAX, no context (the parent is the span the goroutine
 * serves). Rollback is probed at the unexported func (tx *Tx) rollback(discardConn bool) error:
 * Tx.Rollback is a one-line wrapper the compiler inlines into its callers (seen with Go 1.26), and
 * rollback also runs when the Tx's context is cancelled (Tx.awaitDone, on another goroutine). */
SEC("uprobe")
int databasesql_tx_commit(struct pt_regs *ctx)
{
	return dbsql_entry(ctx, DATABASESQL_OP_COMMIT, DATABASESQL_RECV_TX, 0, 0, 0);
}

SEC("uprobe")
int databasesql_tx_rollback(struct pt_regs *ctx)
{
	return dbsql_entry(ctx, DATABASESQL_OP_ROLLBACK, DATABASESQL_RECV_TX, 0, 0, 0);
}

/* RETs of functions returning (*T, error): error = {tab RBX, data RCX}. */
SEC("uprobe")
int databasesql_return_ptr_err(struct pt_regs *ctx)
{
	return dbsql_return(ctx, GO_PARAM2(ctx), GO_PARAM3(ctx));
}

/* RETs of ExecContext, returning (Result, error): Result = {RAX, RBX}, error = {tab RCX, data RDI}. */
SEC("uprobe")
int databasesql_return_result_err(struct pt_regs *ctx)
{
	return dbsql_return(ctx, GO_PARAM3(ctx), GO_PARAM4(ctx));
}

/* RETs of Commit and Rollback, returning error = {tab RAX, data RBX}. */
SEC("uprobe")
int databasesql_return_err(struct pt_regs *ctx)
{
	return dbsql_return(ctx, GO_PARAM1(ctx), GO_PARAM2(ctx));
}
