/**
 * @module probes/databasesql/manifest — the database/sql probe (bpf/databasesql.bpf.c): one
 * CLIENT span per query, exec, prepare, begin, commit and rollback made through database/sql,
 * whatever the driver, per the semconv v1.37 database client conventions:
 *   name              `{db.operation.name} {db.collection.name}`, else the operation, else `DB`
 *   db.system.name    from the driver's Go type (driver.ts)
 *   db.query.text     --db-statement: sanitized (default: literals → `?`, parameterized text as
 *                     is), raw, or off
 *   db.operation.name, db.collection.name   parsed from the text (sql.ts); BEGIN / COMMIT /
 *                     ROLLBACK for transactions, PREPARE for a prepare
 *   error.type        the returned error's Go type when known, else _OTHER; status Error
 * The span is a child of the request being served (the goroutine's span, else the context chain).
 *
 * Which functions (docs/probe-placement.md "database/sql"): the Context variants every other
 * method funnels into. Each is optional: the linker drops the methods a program never calls.
 */
import type { BpfObjectSpec, DecodeContext, FieldDecl, FlagContext, ProbeManifest, UprobeDecl } from "../probe.ts";
import type { RecordReader } from "../record.ts";
import { decodeWith, scopeOf, noteTruncated, spanName, type SpanBuilder } from "../common/span.ts";
import { ENUMERATORS as E, type CounterName, type MapName, type ProgramName, type RodataName } from "./databasesql.gen.ts";
import { driverPackage, errorTypeOf, systemOf } from "./driver.ts";
import { statementMode } from "./options.ts";
import { parseStatement, sanitize } from "./sql.ts";

export const PROBE_ID = "databasesql";
export const SCOPE_NAME = "beetrace/database/sql";
const PKG = "database/sql";

type Field = FieldDecl & { const: RodataName };
const counter = (name: CounterName, rest: Omit<BpfObjectSpec["counters"][number], "name">) => ({ name, ...rest });
const maps = (...names: MapName[]): string[] => names;

export const DATABASESQL_OBJECT: BpfObjectSpec = {
  name: "databasesql",
  callMaps: maps("databasesql_calls"),
  callSlots: maps("databasesql_slots"),
  counters: [
    counter("ringbuf_full", { loss: "ringbufFull", what: "ring buffer full: span dropped" }),
    counter("inflight_full", { loss: "inflightFull", what: "per-call map full at entry: call not traced" }),
    counter("return_without_entry", { loss: "returnWithoutEntry", what: "RET hit with no entry state (call running at attach)" }),
    counter("truncated_strings", { loss: "truncatedStrings", what: "string longer than its cap" }),
    counter("read_errors", { what: "failed reads of target memory (fields left empty)" }),
    counter("entry_replaced", { what: "stale call state replaced (earlier call never returned: panic in a driver)" }),
    counter("rollback_after_done", { what: "Tx rollbacks that found the Tx already ended (ErrTxDone: defer tx.Rollback() after Commit): no span" }),
  ],
};

/** Every field is optional: without one the span loses an attribute, never the call. */
const FIELDS: Field[] = [
  { const: "db_connector_off", field: `${PKG}.DB.connector`, required: false, why: "db.system.name (the driver.Connector's type)" },
  { const: "dsnconn_driver_off", field: `${PKG}.dsnConnector.driver`, required: false, why: "db.system.name for sql.Open'd drivers (the driver.Driver's type)" },
  { const: "conn_db_off", field: `${PKG}.Conn.db`, required: false, why: "db.system.name of calls on a *sql.Conn" },
  { const: "tx_db_off", field: `${PKG}.Tx.db`, required: false, why: "db.system.name of calls on a *sql.Tx" },
  { const: "stmt_db_off", field: `${PKG}.Stmt.db`, required: false, why: "db.system.name of calls on a *sql.Stmt" },
  { const: "stmt_query_off", field: `${PKG}.Stmt.query`, required: false, why: "db.query.text of prepared statements" },
];

/** Return programs by result shape (Go register ABI: results in RAX, RBX, RCX, RDI…). */
const RET_PTR_ERR: ProgramName = "databasesql_return_ptr_err"; // (*Rows|*Stmt|*Tx, error)
const RET_RESULT_ERR: ProgramName = "databasesql_return_result_err"; // (Result, error)
const RET_ERR: ProgramName = "databasesql_return_err"; // error

const probe = (symbol: string, entryProgram: ProgramName, returnProgram: ProgramName): UprobeDecl => ({
  symbol: `${PKG}.${symbol}`,
  entryProgram,
  returnProgram,
  optional: true,
});

/**
 * Query, QueryRow, QueryRowContext call QueryContext; Exec → ExecContext; Prepare →
 * PrepareContext; Begin → BeginTx (database/sql/sql.go, Go 1.17-1.27): probing only these counts
 * each user call once. Tx.Rollback is a one-line wrapper of the unexported rollback, which the
 * compiler inlines into callers: rollback is probed instead.
 */
export const UPROBES: UprobeDecl[] = [
  probe("(*DB).QueryContext", "databasesql_db_query", RET_PTR_ERR),
  probe("(*DB).ExecContext", "databasesql_db_exec", RET_RESULT_ERR),
  probe("(*DB).PrepareContext", "databasesql_db_prepare", RET_PTR_ERR),
  probe("(*DB).BeginTx", "databasesql_db_begin", RET_PTR_ERR),
  probe("(*Conn).QueryContext", "databasesql_conn_query", RET_PTR_ERR),
  probe("(*Conn).ExecContext", "databasesql_conn_exec", RET_RESULT_ERR),
  probe("(*Conn).PrepareContext", "databasesql_conn_prepare", RET_PTR_ERR),
  probe("(*Conn).BeginTx", "databasesql_conn_begin", RET_PTR_ERR),
  probe("(*Tx).QueryContext", "databasesql_tx_query", RET_PTR_ERR),
  probe("(*Tx).ExecContext", "databasesql_tx_exec", RET_RESULT_ERR),
  probe("(*Tx).PrepareContext", "databasesql_tx_prepare", RET_PTR_ERR),
  probe("(*Tx).Commit", "databasesql_tx_commit", RET_ERR),
  probe("(*Tx).rollback", "databasesql_tx_rollback", RET_ERR),
  probe("(*Stmt).QueryContext", "databasesql_stmt_query", RET_PTR_ERR),
  probe("(*Stmt).ExecContext", "databasesql_stmt_exec", RET_RESULT_ERR),
];

const STATEMENT_CONST: Record<ReturnType<typeof statementMode>, number> = {
  off: E.DATABASESQL_STATEMENT_OFF,
  sanitized: E.DATABASESQL_STATEMENT_SANITIZED,
  raw: E.DATABASESQL_STATEMENT_RAW,
};

const FIXED_OPERATION: Partial<Record<number, string>> = {
  [E.DATABASESQL_OP_BEGIN]: "BEGIN",
  [E.DATABASESQL_OP_COMMIT]: "COMMIT",
  [E.DATABASESQL_OP_ROLLBACK]: "ROLLBACK",
};

/** Builds the span (semconv v1.37 "Database client spans", SQL). */
const SCOPE = scopeOf(SCOPE_NAME);
const TRUNCATED_NAMES = { query: "db.query.text" };

export function buildDatabaseSql(r: RecordReader, ctx: DecodeContext, out: SpanBuilder): void {
  const flags = r.flags;
  out.start(r, ctx, SCOPE, "client");
  const op = r.u8("op");
  const driverId = r.u8("driver_id");
  const byCode = BY_CODE.find((d) => d.id === driverId);
  const pkg = byCode?.pkg ?? driverPackage(r.str("driver"), (flags & E.DATABASESQL_F_DRIVER_FIELD) !== 0);
  const system = systemOf(pkg);
  out.attr("db.system.name", system);
  const dialect = { mysql: system === "mysql" };

  const text = r.str("query");
  let operation = FIXED_OPERATION[op];
  let collection: string | undefined;
  if (operation === undefined && text !== "") {
    const parsed = parseStatement(text, dialect);
    collection = parsed.collection;
    // A prepare is its own operation; the statement it prepares names the collection.
    operation = op === E.DATABASESQL_OP_PREPARE ? "PREPARE" : parsed.operation;
  } else if (operation === undefined && op === E.DATABASESQL_OP_PREPARE) {
    operation = "PREPARE";
  }
  if (operation !== undefined) out.attr("db.operation.name", operation);
  if (collection !== undefined) out.attr("db.collection.name", collection);
  if (text !== "" && !(flags & E.DATABASESQL_F_TEXT_OFF)) {
    out.attr("db.query.text", flags & E.DATABASESQL_F_SANITIZE ? sanitize(text, dialect) : text);
  }
  out.name(operation === undefined ? "DB" : collection === undefined ? operation : spanName(operation, collection));
  if (flags & E.DATABASESQL_F_ERROR) {
    out.attr("error.type", errorTypeOf(r.str("err_pkg"), r.str("err_field"), pkg));
    out.error();
  }
  noteTruncated(out, r, TRUNCATED_NAMES);
}

/**
 * Drivers whose type descriptor names no package (bpf/shared/databasesql.h enum databasesql_driver):
 * the BPF const that receives where their Open method is, relative to database/sql's
 * (*dsnConnector).Connect, the function named, and the package it means.
 */
const BY_CODE: readonly { id: number; const: RodataName; open: string; pkg: string }[] = [
  { id: E.DATABASESQL_DRIVER_LIB_PQ, const: "delta_lib_pq", open: "github.com/lib/pq.(*Driver).Open", pkg: "github.com/lib/pq" },
  { id: E.DATABASESQL_DRIVER_MATTN_SQLITE3, const: "delta_mattn_sqlite3", open: "github.com/mattn/go-sqlite3.(*SQLiteDriver).Open", pkg: "github.com/mattn/go-sqlite3" },
  { id: E.DATABASESQL_DRIVER_MYSQL, const: "delta_mysql", open: "github.com/go-sql-driver/mysql.(*MySQLDriver).Open", pkg: "github.com/go-sql-driver/mysql" },
];
const DSN_CONNECT = `${PKG}.(*dsnConnector).Connect`;

/** The switches: the statement mode, and where the known drivers' Open methods are. */
export function databaseSqlFlags(ctx: FlagContext): Record<string, number | bigint> {
  const out: Record<string, number | bigint> = { statement_mode: STATEMENT_CONST[statementMode()] };
  const ref = ctx.functionAddress?.(DSN_CONNECT);
  for (const d of BY_CODE) {
    const open = ctx.functionAddress?.(d.open);
    if (ref !== undefined && open !== undefined && open !== ref) out[d.const] = BigInt(open) - BigInt(ref);
  }
  return out;
}

export const databaseSql: ProbeManifest = {
  id: PROBE_ID,
  library: PKG,
  object: DATABASESQL_OBJECT,
  uprobes: UPROBES,
  fields: FIELDS,
  record: { type: E.REC_DATABASESQL, struct: "rec_databasesql" },
  flags: databaseSqlFlags,
  decode: decodeWith(buildDatabaseSql),
  build: buildDatabaseSql,
};
