/**
 * @module bench/databasesql-overhead — the service CPU the database/sql probe adds per query.
 *
 *   node_modules/.bin/bun bench/databasesql-overhead.ts [--queries 20000] [--per-request 100]
 *       [--rounds 3] [--driver sqlite|postgres|pgx|mysql] [--beetrace dist/beetrace|source]
 *
 * Root (uprobes). The workload is tests/fixtures/go/databasesql's GET /loop?n=N: N calls of
 * DB.QueryRowContext (a parameterized SELECT by primary key) in one request, so one query costs the
 * traced service one database span (the emulated entry hit of (*DB).QueryContext + one
 * single-stepped RET hit) plus 1/N of an HTTP server span. The service's CPU (utime + stime of
 * all its threads, /proc/PID/stat) is read just before the first request and just after the
 * last, for the same workload untraced and traced, in alternating rounds on a fresh process each;
 * the difference per query is printed. sqlite (default, modernc.org/sqlite in memory) keeps the
 * database in the service's own process, so its CPU is the same on both sides; postgres/pgx and
 * mysql use scripts/services/postgres.sh and mariadb.sh (started or reused).
 * /proc/PID/stat counts in clock ticks (10 ms), so keep queries × per-query cost well above it.
 *
 * Prints numbers, asserts nothing (bench/lib.ts). Bounded: every wait has a deadline.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../src/capture/reader.ts";
import { buildFixture } from "../tests/harness/go.ts";
import { alternatingRounds, intOption, machineLine, parseOptions, processCpuMs, ROOT, startTracer, stopTracer, until, watch } from "./lib.ts";

const opts = parseOptions(process.argv.slice(2), { queries: "20000", "per-request": "100", rounds: "3", driver: "sqlite", beetrace: join(ROOT, "dist", "beetrace") });
const PER_REQUEST = Math.max(1, intOption(opts["per-request"], "per-request"));
const REQUESTS = Math.ceil(intOption(opts.queries, "queries") / PER_REQUEST);
const TOTAL = REQUESTS * PER_REQUEST;
const ROUNDS = Math.max(1, intOption(opts.rounds, "rounds"));
/** The fixture's -dsn for the chosen driver (starting the database server when it needs one). */
function dsnFor(driver: string): string {
  if (driver === "sqlite") return ":memory:";
  const script = driver === "mysql" ? "mariadb.sh" : driver === "postgres" || driver === "pgx" ? "postgres.sh" : undefined;
  if (!script) throw new Error(`--driver: ${driver} is not sqlite, postgres, pgx or mysql`);
  const r = spawnSync("bash", [join(ROOT, "scripts", "services", script), "start"], { encoding: "utf8", timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${script} start failed:\n${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  return line.slice(line.indexOf(" ") + 1);
}

async function oneRun(bin: string, dsn: string, traced: boolean, round: number): Promise<{ cpuMs: number; spans: number }> {
  const fx = spawn(bin, ["-driver", opts.driver, "-dsn", dsn], { stdio: ["ignore", "pipe", "pipe"] });
  const fxo = watch(fx);
  const capture = join(tmpdir(), `beetrace-bench-databasesql-${process.pid}-${round}.cbor`);
  let tracer: ChildProcess | undefined;
  try {
    const port = Number((await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(fxo.out()) ?? (fx.exitCode !== null ? (() => { throw new Error(`fixture exited: ${fxo.err()}`); })() : undefined), 30_000, "the fixture"))[1]);
    if (traced) {
      const tr = await startTracer(opts.beetrace, ["attach", "--pid", String(fx.pid), "--out", capture]);
      tracer = tr.proc;
      const tro = tr;
    }
    const base = `http://127.0.0.1:${port}`;
    // Warm-up outside the measurement: the connection pool's first connection, the statement path.
    await (await fetch(`${base}/loop?n=10`)).text();
    const before = processCpuMs(fx.pid!);
    for (let i = 0; i < REQUESTS; i++) {
      const r = await fetch(`${base}/loop?n=${PER_REQUEST}`);
      if (r.status !== 200) throw new Error(`/loop: ${r.status} ${await r.text()}`);
      await r.text();
    }
    const cpuMs = processCpuMs(fx.pid!) - before;
    let spans = 0;
    if (tracer) {
      await stopTracer(tracer);
      spans = readCaptureFile(capture).records.filter((r) => r.type === "span").length;
    }
    return { cpuMs, spans };
  } finally {
    if (tracer && tracer.exitCode === null) tracer.kill("SIGKILL");
    fx.kill("SIGTERM");
    rmSync(capture, { force: true });
  }
}

console.log(`databasesql-overhead: ${machineLine()}`);
console.log(`workload: ${TOTAL} queries (${opts.driver}), ${PER_REQUEST} per request (${REQUESTS} requests); ${ROUNDS} rounds`);
const goVersion = spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8", env: { ...process.env, GOTOOLCHAIN: "local" } }).stdout.trim();
const bin = await buildFixture({ dir: "tests/fixtures/go/databasesql", toolchain: goVersion, mode: "default" });
const dsn = dsnFor(opts.driver);
const { untracedMs: u, tracedMs: t } = await alternatingRounds(ROUNDS, (traced, round) => oneRun(bin, dsn, traced, round));
console.log(`service CPU per query: untraced ${((u * 1000) / TOTAL).toFixed(1)} µs, traced ${((t * 1000) / TOTAL).toFixed(1)} µs`);
console.log(`added by tracing: ${(((t - u) * 1000) / TOTAL).toFixed(1)} µs per query (median of ${ROUNDS} rounds; includes 1/${PER_REQUEST} HTTP server span per query)`);
