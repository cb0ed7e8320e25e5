/**
 * @module probes/databasesql/driver — which database a database/sql call talks to, and what
 * its error was, from what BPF read of the Go runtime type descriptors (bpf/databasesql.bpf.c):
 * the import path of the package that defines the driver's connector or driver type, and for an
 * error, its package path and first struct field name.
 *
 * db.system.name values: semconv v1.37 (registry "db"): postgresql, mysql, sqlite, other_sql, ….
 */

/** Import path prefix of a driver package → db.system.name. */
const SYSTEMS: readonly (readonly [string, string])[] = [
  ["github.com/lib/pq", "postgresql"],
  ["github.com/jackc/pgx", "postgresql"], // pgx/v4/stdlib, pgx/v5/stdlib
  ["github.com/go-sql-driver/mysql", "mysql"],
  ["modernc.org/sqlite", "sqlite"],
  ["github.com/mattn/go-sqlite3", "sqlite"],
  ["github.com/ncruces/go-sqlite3", "sqlite"],
  ["github.com/microsoft/go-mssqldb", "microsoft.sql_server"],
  ["github.com/denisenkom/go-mssqldb", "microsoft.sql_server"],
  ["github.com/sijms/go-ora", "oracle.db"],
  ["github.com/ClickHouse/clickhouse-go", "clickhouse"],
];

/**
 * Drivers whose type has no unexported field (so no package path in its descriptor): BPF sent
 * the name of the type's first field instead. github.com/mattn/go-sqlite3:
 * `type SQLiteDriver struct { Extensions []string; ConnectHook func(*SQLiteConn) error }`.
 */
const BY_FIELD: Readonly<Record<string, string>> = { Extensions: "github.com/mattn/go-sqlite3" };

/** The driver package's import path (undefined when unknown). */
export function driverPackage(driver: string, byField: boolean): string | undefined {
  if (driver === "") return undefined;
  return byField ? BY_FIELD[driver] : driver;
}

/** db.system.name for a driver package (semconv: other_sql when the SQL database is not known). */
export function systemOf(pkg: string | undefined): string {
  if (pkg !== undefined) for (const [prefix, system] of SYSTEMS) if (pkg === prefix || pkg.startsWith(prefix + "/")) return system;
  return "other_sql";
}

/**
 * The error's Go type as `%T` prints it, when its descriptor matches a type we know; else the
 * semconv fallback `_OTHER`. Types with only exported fields carry no package path, so the
 * driver tells them apart (lib/pq's and pgconn's error types both start with `Severity`).
 */
export function errorTypeOf(errPkg: string, errField: string, driverPkg: string | undefined): string {
  const d = driverPkg ?? "";
  if (errPkg === "") {
    if (errField === "Severity" && d.startsWith("github.com/lib/pq")) return "*pq.Error";
    if (errField === "Severity" && d.startsWith("github.com/jackc/pgx")) return "*pgconn.PgError";
    if (errField === "Number" && d.startsWith("github.com/go-sql-driver/mysql")) return "*mysql.MySQLError";
    return "_OTHER";
  }
  const known: Readonly<Record<string, string>> = {
    "modernc.org/sqlite msg": "*sqlite.Error",
    "errors s": "*errors.errorString",
    "fmt msg": "*fmt.wrapError",
    "github.com/mattn/go-sqlite3 Code": "sqlite3.Error",
  };
  return known[`${errPkg} ${errField}`] ?? "_OTHER";
}
