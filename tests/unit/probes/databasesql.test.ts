/**
 * @module tests/unit/probes/databasesql — the database/sql probe's user-space half: the SQL lexer
 * (operation, collection, sanitizing), the driver and error-type mapping, `--db-statement`, the
 * switches handed to BPF, and the decoder, from records written through the layout generated
 * from the object's BTF (record-writer.ts), and the plan on real binaries (optional functions). No
 * root needed.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { SpanDecoder } from "../../../src/probes/decode.ts";
import { recordLayoutOf } from "../../../src/probes/layouts.ts";
import { ENUMERATORS as E } from "../../../src/probes/databasesql/databasesql.gen.ts";
import { databaseSql, databaseSqlFlags, UPROBES } from "../../../src/probes/databasesql/manifest.ts";
import { driverPackage, errorTypeOf, systemOf } from "../../../src/probes/databasesql/driver.ts";
import { parseStatementMode, setStatementMode } from "../../../src/probes/databasesql/options.ts";
import { parseStatement, sanitize, tokenize } from "../../../src/probes/databasesql/sql.ts";
import { isTracerError } from "../../../src/errors.ts";
import type { Span } from "../../../src/spans/model.ts";
import { RecordWriter, type RecordInput } from "./record-writer.ts";
import { readFileSync } from "node:fs";
import { openGoBinary } from "../../../src/binary/analyze.ts";
import { embeddedSnapshot } from "../../../src/offsets/snapshot.ts";
import { planProbes } from "../../../src/trace/plan.ts";
import { buildFixture, goMatrixUnavailable, newestToolchain } from "../../harness/go.ts";

describe("SQL lexer", () => {
  test("tokens give the input back, whatever it is", () => {
    for (const s of [
      "SELECT 'it''s', \"a\"\"b\", `c`, [d], $tag$x$y$tag$, E'\\n', X'ff', 1.5e-3 -- c\n/* b */ FROM t",
      "unterminated 'string",
      "/* unterminated comment",
      "$$ unterminated dollar",
      "",
      "\u00e9t\u00e9 = 'caf\u00e9'",
    ]) {
      expect(tokenize(s).map((t) => t.text).join("")).toBe(s);
      expect(tokenize(s, { mysql: true }).map((t) => t.text).join("")).toBe(s);
    }
  });

  test("kinds: strings, quoted names, numbers, placeholders, comments", () => {
    const kinds = (s: string, mysql = false) => tokenize(s, { mysql }).filter((t) => t.kind !== "space").map((t) => `${t.kind}:${t.text}`);
    expect(kinds("a = 'x' AND b = 42 AND c = $1 AND d = ? AND e = :name AND f = @p AND g::int")).toEqual([
      "word:a", "punct:=", "string:'x'", "word:AND", "word:b", "punct:=", "number:42", "word:AND", "word:c", "punct:=", "placeholder:$1",
      "word:AND", "word:d", "punct:=", "placeholder:?", "word:AND", "word:e", "punct:=", "placeholder::name", "word:AND", "word:f", "punct:=",
      "placeholder:@p", "word:AND", "word:g", "punct::", "punct::", "word:int",
    ]);
    expect(kinds('"x" # c\n1', true)).toEqual(["string:\"x\"", "comment:# c", "number:1"]);
    expect(kinds('"x" # c')).toEqual(["quoted:\"x\"", "punct:#", "word:c"]);
    expect(kinds("0x1F t1 1e5 .5")).toEqual(["number:0x1F", "word:t1", "number:1e5", "number:.5"]);
    expect(kinds("'a\\'b' x", true)).toEqual(["string:'a\\'b'", "word:x"]);
  });
});

describe("operation and collection (db.operation.name, db.collection.name)", () => {
  const cases: [string, { operation?: string; collection?: string }][] = [
    ["SELECT id, name FROM users WHERE id = $1", { operation: "SELECT", collection: "users" }],
    ["select * from public.users u join orders o on o.uid = u.id", { operation: "select", collection: "public.users" }],
    ['SELECT * FROM "My Table"', { operation: "SELECT", collection: '"My Table"' }],
    ["SELECT * FROM `db`.`t`", { operation: "SELECT", collection: "`db`.`t`" }],
    ["SELECT COUNT(*) FROM orders", { operation: "SELECT", collection: "orders" }],
    ["SELECT (SELECT max(x) FROM a) FROM b", { operation: "SELECT", collection: "b" }],
    ["SELECT * FROM (SELECT 1) s", { operation: "SELECT" }],
    ["SELECT 1", { operation: "SELECT" }],
    ["  /* hint */ -- c\n (SELECT a FROM t)", { operation: "SELECT", collection: "t" }],
    ["INSERT INTO orders (user_id, total) VALUES ($1, $2)", { operation: "INSERT", collection: "orders" }],
    ["INSERT IGNORE INTO t VALUES (1)", { operation: "INSERT", collection: "t" }],
    ["REPLACE INTO t VALUES (1)", { operation: "REPLACE", collection: "t" }],
    ["UPDATE users SET name = 'bee' WHERE id = 2", { operation: "UPDATE", collection: "users" }],
    ["UPDATE ONLY users SET a = 1", { operation: "UPDATE", collection: "users" }],
    ["DELETE FROM sessions WHERE expires < now()", { operation: "DELETE", collection: "sessions" }],
    ["CREATE TABLE IF NOT EXISTS users (id int)", { operation: "CREATE", collection: "users" }],
    ["CREATE UNIQUE INDEX i ON users (id)", { operation: "CREATE", collection: "users" }],
    ["DROP TABLE IF EXISTS orders", { operation: "DROP", collection: "orders" }],
    ["TRUNCATE TABLE logs", { operation: "TRUNCATE", collection: "logs" }],
    ["TRUNCATE logs", { operation: "TRUNCATE", collection: "logs" }],
    ["ALTER TABLE t ADD COLUMN c int", { operation: "ALTER", collection: "t" }],
    ["WITH x AS (SELECT * FROM a) SELECT * FROM x", { operation: "SELECT", collection: "x" }],
    ["WITH x AS (SELECT 1) DELETE FROM t", { operation: "DELETE", collection: "t" }],
    ["BEGIN", { operation: "BEGIN" }],
    ["SHOW TABLES", { operation: "SHOW" }],
    ["SELEC * FROM users", {}],
    ["", {}],
    ["42", {}],
    ["WITH broken", {}],
  ];
  for (const [sql, want] of cases) test(JSON.stringify(sql), () => expect(parseStatement(sql)).toEqual(want));
});

describe("sanitizing (db.query.text, --db-statement=sanitized)", () => {
  test("literals become ?", () => {
    expect(sanitize("UPDATE users SET name = 'bee' WHERE id = 2")).toBe("UPDATE users SET name = ? WHERE id = ?");
    expect(sanitize("SELECT * FROM t WHERE a = E'x\\'y' OR b IN (1, 2.5, -3e4) OR c = $q$ secret $q$")).toBe("SELECT * FROM t WHERE a = ? OR b IN (?, ?, -?) OR c = ?");
    expect(sanitize("SELECT * FROM t1 WHERE x = 0xff -- keep 'comments'")).toBe("SELECT * FROM t1 WHERE x = ? -- keep 'comments'");
    expect(sanitize('SELECT "col" FROM t WHERE a = \'x\'')).toBe('SELECT "col" FROM t WHERE a = ?');
  });
  test("MySQL: double-quoted text is a string, backslash escapes stay inside it", () => {
    expect(sanitize('SELECT * FROM t WHERE a = "secret" AND b = \'it\\\'s\'', { mysql: true })).toBe("SELECT * FROM t WHERE a = ? AND b = ?");
  });
  test("parameterized statements are kept as they are", () => {
    expect(sanitize("SELECT id FROM users WHERE id = $1 AND kind = 'admin'")).toBe("SELECT id FROM users WHERE id = $1 AND kind = 'admin'");
    expect(sanitize("INSERT INTO t VALUES (?, ?)")).toBe("INSERT INTO t VALUES (?, ?)");
  });
  test("no literals: unchanged", () => expect(sanitize("SELECT COUNT(*) FROM orders")).toBe("SELECT COUNT(*) FROM orders"));
});

describe("driver and error type", () => {
  test("db.system.name from the driver's package (semconv v1.37 well-known values)", () => {
    expect(systemOf("github.com/lib/pq")).toBe("postgresql");
    expect(systemOf("github.com/jackc/pgx/v5/stdlib")).toBe("postgresql");
    expect(systemOf("github.com/jackc/pgx/v4/stdlib")).toBe("postgresql");
    expect(systemOf("github.com/go-sql-driver/mysql")).toBe("mysql");
    expect(systemOf("modernc.org/sqlite")).toBe("sqlite");
    expect(systemOf("github.com/mattn/go-sqlite3")).toBe("sqlite");
    expect(systemOf("github.com/lib/pqx")).toBe("other_sql");
    expect(systemOf("example.com/mydriver")).toBe("other_sql");
    expect(systemOf(undefined)).toBe("other_sql");
    expect(driverPackage("Extensions", true)).toBe("github.com/mattn/go-sqlite3");
    expect(driverPackage("Other", true)).toBeUndefined();
    expect(driverPackage("", false)).toBeUndefined();
  });
  test("error.type: known descriptors, else _OTHER", () => {
    expect(errorTypeOf("", "Severity", "github.com/lib/pq")).toBe("*pq.Error");
    expect(errorTypeOf("", "Severity", "github.com/jackc/pgx/v5/stdlib")).toBe("*pgconn.PgError");
    expect(errorTypeOf("", "Number", "github.com/go-sql-driver/mysql")).toBe("*mysql.MySQLError");
    expect(errorTypeOf("modernc.org/sqlite", "msg", "modernc.org/sqlite")).toBe("*sqlite.Error");
    expect(errorTypeOf("errors", "s", undefined)).toBe("*errors.errorString");
    expect(errorTypeOf("", "Severity", undefined)).toBe("_OTHER");
    expect(errorTypeOf("example.com/x", "y", "github.com/lib/pq")).toBe("_OTHER");
    expect(errorTypeOf("", "", undefined)).toBe("_OTHER");
  });
});

describe("--db-statement and the switches for BPF", () => {
  afterEach(() => setStatementMode("sanitized"));
  test("modes", () => {
    expect(parseStatementMode(undefined)).toBe("sanitized");
    for (const m of ["off", "sanitized", "raw"] as const) expect(parseStatementMode(m)).toBe(m);
    let err: unknown;
    try {
      parseStatementMode("full");
    } catch (e) {
      err = e;
    }
    expect(isTracerError(err) && err.code === "usage").toBe(true);
  });
  test("statement_mode and the Open-method deltas (bias-free: relative to (*dsnConnector).Connect)", () => {
    const fns: Record<string, number> = {
      "database/sql.(*dsnConnector).Connect": 0x50d260,
      "github.com/lib/pq.(*Driver).Open": 0x835dc0,
      "github.com/go-sql-driver/mysql.(*MySQLDriver).Open": 0x4a7420,
    };
    const ctx = { goVersion: "go1.26.8", offset: () => undefined, functionAddress: (n: string) => fns[n] };
    expect(databaseSqlFlags(ctx)).toEqual({
      statement_mode: E.DATABASESQL_STATEMENT_SANITIZED,
      delta_lib_pq: 0x835dc0n - 0x50d260n,
      delta_mysql: 0x4a7420n - 0x50d260n,
    });
    setStatementMode("raw");
    expect(databaseSqlFlags({ goVersion: "go1.26.8", offset: () => undefined })).toEqual({ statement_mode: E.DATABASESQL_STATEMENT_RAW });
    setStatementMode("off");
    expect(databaseSql.flags({ goVersion: "go1.26.8", offset: () => undefined })).toEqual({ statement_mode: E.DATABASESQL_STATEMENT_OFF });
  });
  test("every probed function is optional, and each has its own entry program", () => {
    expect(UPROBES.every((u) => u.optional === true)).toBe(true);
    expect(new Set(UPROBES.map((u) => u.entryProgram)).size).toBe(UPROBES.length);
    // Wrappers that funnel into a probed function are not probed (one span per call).
    for (const wrapper of ["Query", "QueryRow", "QueryRowContext", "Exec", "Prepare", "Begin", "Rollback"]) {
      expect(UPROBES.some((u) => u.symbol.endsWith(`.${wrapper}`))).toBe(false);
    }
  });
});

describe("decoder", () => {
  const layout = recordLayoutOf("databasesql", "rec_databasesql");
  const toEpoch = (ns: bigint) => ns + 1_700_000_000_000_000_000n;
  const TRACE = "0af7651916cd43dd8448eb211c80319c";
  const SPAN = "b7ad6b7169203331";
  const PARENT = "00f067aa0ba902b7";
  function decode(input: RecordInput): Span {
    const d = new SpanDecoder();
    const span = d.decode(new RecordWriter(layout).bytes(input), toEpoch);
    if (span === undefined) throw new Error(`record refused: ${d.firstInvalid}`);
    return span;
  }
  const rec = (fields: Record<string, number | bigint>, strings: Record<string, string>): RecordInput => ({
    fields: {
      type: E.REC_DATABASESQL,
      start_ns: 1000n,
      end_ns: 1500n,
      flags: E.REC_SPAN_F_HAS_PARENT | E.REC_SPAN_F_END_AT_RET | E.DATABASESQL_F_SANITIZE,
      op: E.DATABASESQL_OP_QUERY,
      recv: E.DATABASESQL_RECV_DB,
      ...fields,
    },
    hex: { trace_id: TRACE, span_id: SPAN, parent_span_id: PARENT },
    strings,
  });

  test("a query: name, kind, ids, times, attributes", () => {
    const s = decode(rec({}, { query: "SELECT id FROM users WHERE id = $1", driver: "github.com/jackc/pgx/v5/stdlib" }));
    expect(s).toMatchObject({
      traceId: TRACE,
      spanId: SPAN,
      parentSpanId: PARENT,
      name: "SELECT users",
      kind: "client",
      startTimeUnixNano: toEpoch(1000n),
      endTimeUnixNano: toEpoch(1500n),
      status: { code: "unset" },
      scope: { name: "beetrace/database/sql" },
    });
    expect(s.attributes).toEqual({
      "db.system.name": "postgresql",
      "db.operation.name": "SELECT",
      "db.collection.name": "users",
      "db.query.text": "SELECT id FROM users WHERE id = $1",
    });
  });

  test("statement modes: sanitized, raw, off (the record says which it was traced under)", () => {
    const q = { query: "UPDATE users SET name = 'bee' WHERE id = 2", driver: "modernc.org/sqlite" };
    expect(decode(rec({ op: E.DATABASESQL_OP_EXEC }, q)).attributes["db.query.text"]).toBe("UPDATE users SET name = ? WHERE id = ?");
    const raw = decode(rec({ op: E.DATABASESQL_OP_EXEC, flags: E.REC_SPAN_F_END_AT_RET }, q));
    expect(raw.attributes["db.query.text"]).toBe(q.query);
    const off = decode(rec({ op: E.DATABASESQL_OP_EXEC, flags: E.REC_SPAN_F_END_AT_RET | E.DATABASESQL_F_TEXT_OFF }, q));
    expect(off.name).toBe("UPDATE users");
    expect(off.attributes["db.query.text"]).toBeUndefined();
  });

  test("prepare, begin, commit, rollback", () => {
    const p = decode(rec({ op: E.DATABASESQL_OP_PREPARE, recv: E.DATABASESQL_RECV_TX }, { query: "SELECT a FROM t WHERE b = ?", driver: "modernc.org/sqlite" }));
    expect([p.name, p.attributes["db.operation.name"], p.attributes["db.collection.name"]]).toEqual(["PREPARE t", "PREPARE", "t"]);
    for (const [op, name] of [
      [E.DATABASESQL_OP_BEGIN, "BEGIN"],
      [E.DATABASESQL_OP_COMMIT, "COMMIT"],
      [E.DATABASESQL_OP_ROLLBACK, "ROLLBACK"],
    ] as const) {
      const s = decode(rec({ op, recv: E.DATABASESQL_RECV_TX }, { driver: "github.com/go-sql-driver/mysql" }));
      expect({ name: s.name, attributes: s.attributes }).toEqual({ name, attributes: { "db.system.name": "mysql", "db.operation.name": name } });
    }
  });

  test("drivers known by code address, by field name, and unknown", () => {
    expect(decode(rec({ driver_id: E.DATABASESQL_DRIVER_LIB_PQ }, { query: "SELECT 1" })).attributes["db.system.name"]).toBe("postgresql");
    expect(decode(rec({ driver_id: E.DATABASESQL_DRIVER_MATTN_SQLITE3 }, { query: "SELECT 1" })).attributes["db.system.name"]).toBe("sqlite");
    const f = decode(rec({ flags: E.DATABASESQL_F_DRIVER_FIELD | E.DATABASESQL_F_SANITIZE }, { query: "SELECT 1", driver: "Extensions" }));
    expect(f.attributes["db.system.name"]).toBe("sqlite");
    expect(decode(rec({}, { query: "SELECT 1", driver: "example.com/db" })).attributes["db.system.name"]).toBe("other_sql");
    expect(decode(rec({}, { query: "SELECT 1" })).attributes["db.system.name"]).toBe("other_sql");
  });

  test("an error: Error status, error.type, name DB when no operation is known", () => {
    const s = decode(
      rec({ flags: E.DATABASESQL_F_SANITIZE | E.DATABASESQL_F_ERROR | E.REC_SPAN_F_HAS_PARENT, driver_id: E.DATABASESQL_DRIVER_LIB_PQ }, { query: "SELEC * FROM users", err_field: "Severity" }),
    );
    expect({ name: s.name, status: s.status, attributes: s.attributes }).toEqual({
      name: "DB",
      status: { code: "error" },
      attributes: { "db.system.name": "postgresql", "db.query.text": "SELEC * FROM users", "error.type": "*pq.Error" },
    });
    const other = decode(rec({ flags: E.DATABASESQL_F_ERROR }, { query: "SELECT 1", driver: "modernc.org/sqlite", err_pkg: "example.com/e", err_field: "x" }));
    expect(other.attributes["error.type"]).toBe("_OTHER");
  });

  test("no parent, truncated text, read errors are marked", () => {
    const s = decode(rec({ flags: E.DATABASESQL_F_SANITIZE | E.REC_SPAN_F_READ_ERROR, truncated: 1 }, { query: "SELECT a FROM t WHERE x = 'abc" }));
    expect(s.parentSpanId).toBeUndefined();
    expect(s.attributes["beetrace.truncated"]).toBe("db.query.text");
    expect(s.attributes["beetrace.read_error"]).toBe(true);
    expect(s.attributes["db.query.text"]).toBe("SELECT a FROM t WHERE x = ?");
  });

  test("junk text never throws", () => {
    for (const q of ["\u0000\u0001'", "((((", "$", "`", "WITH (", "SELECT FROM", "INSERT INTO (", "😀 FROM x"]) {
      expect(typeof decode(rec({}, { query: q })).name).toBe("string");
    }
  });
});

describe("planning on a real binary (optional functions)", () => {
  const why = goMatrixUnavailable();
  test.skipIf(why !== undefined)(`only the linked functions are probed; the others do not disable the probe${why ? ` (skipped: ${why})` : ""}`, async () => {
    // tests/fixtures/go/untraced calls DB.QueryContext and DB.ExecContext only (the build is
    // shared with tests/unit/probes/protocols.test.ts through the fixture cache).
    const exe = await buildFixture({ dir: "tests/fixtures/go/untraced", toolchain: newestToolchain(), mode: "ldflags-s-w" });
    const a = openGoBinary(new Uint8Array(readFileSync(exe)), exe);
    const [plan] = planProbes(a, [databaseSql], { snapshot: embeddedSnapshot(), allowNearest: false });
    expect(plan!.reason).toBeUndefined();
    expect(plan!.enabled).toBe(true);
    const entries = plan!.points.filter((p) => p.role === "entry");
    expect(entries.map((p) => [p.symbol, p.program, p.emulated])).toEqual([
      ["database/sql.(*DB).QueryContext", "databasesql_db_query", true],
      ["database/sql.(*DB).ExecContext", "databasesql_db_exec", true],
    ]);
    // No end marker: each ends at its RETs, with the return program of its result shape.
    const rets = plan!.points.filter((p) => p.role === "return");
    expect(rets.length).toBeGreaterThanOrEqual(2);
    expect(new Set(rets.map((p) => `${p.symbol} ${p.program}`))).toEqual(
      new Set(["database/sql.(*DB).QueryContext databasesql_return_ptr_err", "database/sql.(*DB).ExecContext databasesql_return_result_err"]),
    );
    // The statement mode is always set; no known driver is linked, so no code-address deltas.
    expect(plan!.consts["statement_mode"]).toBe(E.DATABASESQL_STATEMENT_SANITIZED);
    expect(Object.keys(plan!.consts).filter((k) => k.startsWith("delta_"))).toEqual([]);
  }, 300_000);

  test.skipIf(why !== undefined)(`a binary without database/sql: not linked, nothing to warn about${why ? ` (skipped: ${why})` : ""}`, async () => {
    const exe = await buildFixture({ dir: "tests/fixtures/go/sample", toolchain: newestToolchain(), mode: "default" });
    const a = openGoBinary(new Uint8Array(readFileSync(exe)), exe);
    const [plan] = planProbes(a, [databaseSql], { snapshot: embeddedSnapshot(), allowNearest: false });
    expect({ enabled: plan!.enabled, notLinked: plan!.notLinked }).toEqual({ enabled: false, notLinked: true });
  }, 300_000);
});
