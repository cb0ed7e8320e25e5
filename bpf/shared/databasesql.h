/* SPDX-License-Identifier: Apache-2.0 */
/*
 * databasesql.h — the span record of the database/sql probe (bpf/databasesql.bpf.c), read back
 * by src/probes/databasesql/ through layouts generated from this object's BTF.
 *
 * Strings follow the fixed fields, packed in the order of their `*_len` fields; a length is the
 * number of bytes stored (at most the string's cap below); rec_span.truncated bit i says string i
 * (in that order) was longer.
 */
#ifndef BEETRACE_SHARED_DATABASESQL_H
#define BEETRACE_SHARED_DATABASESQL_H

#include <linux/types.h>
#include "span.h"

/* Caps of the strings (bytes kept). The query cap keeps the whole record under the scratch
 * bound (record.bpf.h BEE_POS_MASK); longer statements are cut and marked truncated. */
#define DATABASESQL_QUERY_CAP 1536
#define DATABASESQL_PKG_CAP 96
#define DATABASESQL_FIELD_CAP 32

/* Which database/sql call the span is (set by the entry program that ran). */
enum databasesql_op {
	DATABASESQL_OP_QUERY = 1,    /* QueryContext (Query, QueryRow, QueryRowContext funnel into it) */
	DATABASESQL_OP_EXEC = 2,     /* ExecContext (Exec funnels into it) */
	DATABASESQL_OP_PREPARE = 3,  /* PrepareContext (Prepare funnels into it) */
	DATABASESQL_OP_BEGIN = 4,    /* BeginTx (Begin funnels into it) */
	DATABASESQL_OP_COMMIT = 5,   /* Tx.Commit */
	DATABASESQL_OP_ROLLBACK = 6, /* Tx.Rollback */
};

/* The receiver of the call. */
enum databasesql_recv {
	DATABASESQL_RECV_DB = 1,
	DATABASESQL_RECV_CONN = 2,
	DATABASESQL_RECV_TX = 3,
	DATABASESQL_RECV_STMT = 4,
};

/*
 * Drivers told apart by the code address of their Open method (see bpf/databasesql.bpf.c): their
 * driver type is an empty struct, so its descriptor names no package.
 */
enum databasesql_driver {
	DATABASESQL_DRIVER_UNKNOWN = 0,
	DATABASESQL_DRIVER_LIB_PQ = 1,         /* github.com/lib/pq: type Driver struct{} */
	DATABASESQL_DRIVER_MATTN_SQLITE3 = 2,  /* github.com/mattn/go-sqlite3: SQLiteDriver, exported fields only */
	DATABASESQL_DRIVER_MYSQL = 3,          /* github.com/go-sql-driver/mysql: type MySQLDriver struct{} (sql.Open
						* uses its OpenConnector; this is for a DB made otherwise) */
};

/* How user space is to show the statement text (--db-statement); BPF copies the text in every
 * mode but off, so the span can still be named from it in sanitized mode. */
enum databasesql_statement {
	DATABASESQL_STATEMENT_OFF = 0,       /* no db.query.text */
	DATABASESQL_STATEMENT_SANITIZED = 1, /* literals replaced by '?' */
	DATABASESQL_STATEMENT_RAW = 2,       /* as the program passed it */
};

/* rec_databasesql flags (bits 8-15 of rec_span.flags). */
enum rec_databasesql_flags {
	DATABASESQL_F_ERROR = 1 << 8,      /* the call returned a non-nil error */
	DATABASESQL_F_SANITIZE = 1 << 9,   /* --db-statement=sanitized: replace literals */
	DATABASESQL_F_TEXT_OFF = 1 << 10,  /* --db-statement=off: the text is used for the name only */
	DATABASESQL_F_DRIVER_SQL = 1 << 11, /* the driver string came through database/sql's dsnConnector */
	/* the driver's struct type has no package path (no unexported field): the driver string is the
	 * name of its first field instead (github.com/mattn/go-sqlite3's SQLiteDriver) */
	DATABASESQL_F_DRIVER_FIELD = 1 << 12,
};

/*
 * One database/sql call. Strings:
 *   query     the SQL text (the call's query argument, or Stmt.query)
 *   driver    import path of the package that defines the DB's driver.Connector, or of the
 *             driver.Driver behind sql.Open's dsnConnector (github.com/lib/pq, ...): the runtime
 *             type descriptor's StructType.PkgPath, which is a plain pointer (no PIE bias to apply)
 *   err_pkg   the same for the returned error's concrete type (empty without an error)
 *   err_field the name of that type's first struct field (tells types of one package apart)
 */
struct rec_databasesql {
	struct rec_span h;
	__u8 op;   /* enum databasesql_op */
	__u8 recv; /* enum databasesql_recv */
	__u16 query_len;
	__u8 driver_len;
	__u8 err_pkg_len;
	__u8 err_field_len;
	__u8 driver_id; /* enum databasesql_driver: set when the driver string cannot name it */
	__u8 strings[];
};
/* Strings start at offsetof(strings), not sizeof (which rounds up to the 8-byte alignment). */
_Static_assert(__builtin_offsetof(struct rec_databasesql, strings) == 64, "rec_databasesql layout");

#endif /* BEETRACE_SHARED_DATABASESQL_H */
