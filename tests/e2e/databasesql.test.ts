/**
 * @module tests/e2e/databasesql — the database/sql probe against real databases: PostgreSQL
 * (Debian's package) through lib/pq and through pgx's stdlib, MariaDB (Debian's package) through
 * go-sql-driver/mysql, SQLite through modernc.org/sqlite. One fixture (tests/fixtures/go/
 * databasesql) links all four drivers; a flag picks one. The test attaches to it, sends a known
 * set of requests (queries, an exec with literals, a prepared statement, a transaction, a query on
 * a *sql.Conn, a syntax error), and asserts every database span exactly: name, kind, status,
 * attributes (semconv v1.37), and that its parent is the HTTP server span of its request.
 * A stripped build is traced on the embedded offsets.json alone.
 *
 * The databases are started by scripts/services/postgres.sh and mariadb.sh (idempotent; they
 * install the Debian packages on a fresh machine). The fixture links modernc.org/sqlite, a large
 * compile: it is built once per toolchain and mode (cached by tests/harness/go.ts), at nice 10.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { getPriority, setPriority } from "node:os";
import { join } from "node:path";
import { embeddedSnapshot } from "../../src/offsets/snapshot.ts";
import type { SpanRecord } from "../../src/capture/format.ts";
import { buildFixture, newestToolchain, REPO_ROOT } from "../harness/go.ts";
import { e2eSkipReason, httpGet, readSpans, runTracer, startSample, type Capture, type Exchange, e2eWorkDir } from "./harness.ts";

const reason = e2eSkipReason();
const work = e2eWorkDir("databasesql");

const FIXTURE = "tests/fixtures/go/databasesql";
/** Builds of the fixture: a cold one compiles modernc.org/sqlite (minutes on a loaded 2-core box). */
const BUILD_TIMEOUT_MS = 900_000;
const TEST_TIMEOUT_MS = 180_000;

const FIELDS = ["DB.connector", "dsnConnector.driver", "Conn.db", "Tx.db", "Stmt.db", "Stmt.query"].map((f) => `database/sql.${f}`);
const goVersion = reason ? "" : spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).stdout.trim();
const covered = (v: string): boolean => FIELDS.every((f) => embeddedSnapshot().lookup("std", f, v).kind === "found");
/** Toolchain of the stripped build: the local one when offsets.json covers it, else the newest pinned one. */
const strippedToolchain = reason ? undefined : [goVersion, newestToolchain()].find(covered);
if (!reason && strippedToolchain === undefined) console.warn(`databasesql e2e: offsets.json covers the database/sql fields for neither ${goVersion} nor ${newestToolchain()}`);

/** How one driver is run: fixture flags, database, expected db.system.name and error type. */
interface Driver {
  name: string;
  flag: string;
  dsn: () => string;
  system: string;
  errorType: string;
  placeholder: (n: number) => string;
}

let pgUrl = "";
let mariaDsn = "";

function service(script: string): string {
  const r = spawnSync("bash", [join(REPO_ROOT, "scripts", "services", script), "start"], { encoding: "utf8", timeout: 600_000 });
  if (r.status !== 0) throw new Error(`scripts/services/${script} start failed (${r.status ?? r.signal}): ${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  return line.slice(line.indexOf(" ") + 1);
}

const PG = (n: number) => `$${n}`;
const QM = () => "?";
const DRIVERS: Driver[] = [
  { name: "SQLite via modernc.org/sqlite", flag: "sqlite", dsn: () => ":memory:", system: "sqlite", errorType: "*sqlite.Error", placeholder: QM },
  { name: "PostgreSQL via lib/pq", flag: "postgres", dsn: () => pgUrl, system: "postgresql", errorType: "*pq.Error", placeholder: PG },
  { name: "PostgreSQL via pgx stdlib", flag: "pgx", dsn: () => pgUrl, system: "postgresql", errorType: "*pgconn.PgError", placeholder: PG },
  { name: "MariaDB via go-sql-driver/mysql", flag: "mysql", dsn: () => mariaDsn, system: "mysql", errorType: "*mysql.MySQLError", placeholder: QM },
];

/** The requests, in order (a prime number of /query calls), and their expected HTTP status. */
const WORKLOAD: { path: string; n: number; status: number }[] = [
  { path: "/query", n: 3, status: 200 },
  { path: "/exec", n: 1, status: 200 },
  { path: "/prepared", n: 1, status: 200 },
  { path: "/tx", n: 1, status: 200 },
  { path: "/conn", n: 1, status: 200 },
  { path: "/bad", n: 1, status: 500 },
];

interface Expected {
  name: string;
  status: SpanRecord["status"];
  attributes: Record<string, string>;
}

/** The database spans each request must have, in start order. */
function expectedSpans(d: Driver, path: string): Expected[] {
  const ok = { code: "unset" } as const;
  const sys = { "db.system.name": d.system };
  const q = (op: string, coll: string, text: string): Expected => ({
    name: `${op} ${coll}`,
    status: ok,
    attributes: { ...sys, "db.operation.name": op, "db.collection.name": coll, "db.query.text": text },
  });
  const p = d.placeholder;
  switch (path) {
    case "/query":
      return [q("SELECT", "users", `SELECT id, name FROM users WHERE id = ${p(1)}`)];
    case "/exec":
      // Literals in a statement without placeholders are replaced (--db-statement=sanitized, the default).
      return [q("UPDATE", "users", "UPDATE users SET name = ? WHERE id = ?")];
    case "/prepared":
      return [q("PREPARE", "users", `SELECT name FROM users WHERE id = ${p(1)}`), q("SELECT", "users", `SELECT name FROM users WHERE id = ${p(1)}`)];
    case "/tx":
      return [
        { name: "BEGIN", status: ok, attributes: { ...sys, "db.operation.name": "BEGIN" } },
        q("INSERT", "orders", `INSERT INTO orders (user_id, total) VALUES (${p(1)}, ${p(2)})`),
        { name: "COMMIT", status: ok, attributes: { ...sys, "db.operation.name": "COMMIT" } },
      ];
    case "/conn":
      return [q("SELECT", "orders", "SELECT COUNT(*) FROM orders")];
    case "/bad":
      // Not a known statement keyword: no operation, the span is named DB.
      return [{ name: "DB", status: { code: "error" }, attributes: { ...sys, "db.query.text": "SELEC * FROM users", "error.type": d.errorType } }];
  }
  throw new Error(`no expectation for ${path}`);
}

/** Starts the fixture for `d`, attaches, runs the workload, stops; returns the capture. */
async function trace(bin: string, d: Driver): Promise<{ cap: Capture; exchanges: Exchange[] }> {
  const app = await startSample(bin, ["-driver", d.flag, "-dsn", d.dsn()]);
  try {
    const out = join(work, `${d.flag}-${app.pid}.cbor`);
    const tr = runTracer(["attach", "--pid", String(app.pid), "--out", out]);
    await tr.started();
    const exchanges: Exchange[] = [];
    for (const w of WORKLOAD) for (let i = 0; i < w.n; i++) exchanges.push(await httpGet(app.port, w.path));
    tr.signal("SIGINT");
    const exit = await tr.exit();
    expect({ exit, stderr: tr.stderr() }).toMatchObject({ exit: { code: 0, signal: null } });
    return { cap: readSpans(out), exchanges };
  } finally {
    await app.stop();
  }
}

/** Every assertion about one driver's capture. */
function check(d: Driver, cap: Capture, exchanges: Exchange[]): void {
  for (const x of exchanges) {
    const want = WORKLOAD.find((w) => w.path === x.path)!.status;
    expect({ path: x.path, status: x.status }).toEqual({ path: x.path, status: want });
  }
  expect(cap.end?.totals.losses).toMatchObject({ ringbufFull: 0, inflightFull: 0, returnWithoutEntry: 0, truncatedStrings: 0 });
  expect(cap.contents.header.probes.filter((p) => p.attached).map((p) => p.id)).toContain("databasesql");

  const servers = cap.spans.filter((s) => s.kind === "server");
  const db = cap.spans.filter((s) => s.scope?.name === "beetrace/database/sql");
  expect(servers.length).toBe(exchanges.length);
  // No database span outside a request (the fixture's setup ran before the tracer attached; a
  // `rollback` of an already committed Tx is not a span).
  const serverIds = new Set(servers.map((s) => s.spanId));
  expect(db.filter((s) => !serverIds.has(s.parentSpanId ?? "")).map((s) => s.name)).toEqual([]);

  let total = 0;
  for (const server of servers) {
    const path = String(server.attributes["url.path"]);
    const children = db.filter((s) => s.parentSpanId === server.spanId).sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
    const got = children.map((s) => ({ name: s.name, kind: s.kind, status: s.status, trace: s.traceId, attributes: s.attributes }));
    const want = expectedSpans(d, path).map((e) => ({ ...e, kind: "client" as const, trace: server.traceId }));
    expect({ path, spans: got }).toEqual({ path, spans: want });
    // Inside the request, in time.
    for (const c of children) {
      expect(c.startTimeUnixNano >= server.startTimeUnixNano && c.endTimeUnixNano <= server.endTimeUnixNano).toBe(true);
      expect(c.endTimeUnixNano >= c.startTimeUnixNano).toBe(true);
    }
    total += want.length;
  }
  expect(db.length).toBe(total);
}

describe.skipIf(reason !== undefined)(`database/sql against real databases${reason ? ` (skipped: ${reason})` : ""}`, () => {
  let bin = "";
  let stripped = "";

  beforeAll(async () => {
    // The fixture's build (modernc.org/sqlite is large) and the database installs run niced; the
    // priority is restored before anything is traced.
    const before = getPriority();
    setPriority(10);
    try {
      bin = await buildFixture({ dir: FIXTURE, toolchain: goVersion, mode: "default" });
      if (strippedToolchain !== undefined) stripped = await buildFixture({ dir: FIXTURE, toolchain: strippedToolchain, mode: "strip" });
      pgUrl = service("postgres.sh");
      mariaDsn = service("mariadb.sh");
    } finally {
      setPriority(before);
    }
  }, BUILD_TIMEOUT_MS);

  for (const d of DRIVERS) {
    test(
      d.name,
      async () => {
        const { cap, exchanges } = await trace(bin, d);
        check(d, cap, exchanges);
      },
      TEST_TIMEOUT_MS,
    );
  }

  test.skipIf(strippedToolchain === undefined)(
    `stripped build, offsets from offsets.json alone (PostgreSQL via lib/pq, SQLite)${strippedToolchain === undefined ? " (skipped: offsets.json does not cover database/sql for the toolchains here)" : ""}`,
    async () => {
      for (const d of [DRIVERS[1]!, DRIVERS[0]!]) {
        const { cap, exchanges } = await trace(stripped, d);
        // Every database/sql offset came from the embedded snapshot (no DWARF in the binary).
        const offsets = cap.contents.header.probes.find((p) => p.id === "databasesql")?.offsets ?? [];
        expect(offsets.map((o) => [o.field, o.source])).toEqual(FIELDS.map((f) => [f, "snapshot"]));
        check(d, cap, exchanges);
      }
    },
    TEST_TIMEOUT_MS,
  );
});
