/**
 * @module scripts/demo — build the sample Go service, trace it with dist/beetrace while sending it
 * a small workload, then print the captured traces (`beetrace view`). Run by scripts/demo.sh.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const work = join(root, ".cache", "demo");
const beetrace = join(root, "dist", "beetrace");
mkdirSync(work, { recursive: true });

function must(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const r = spawnSync(cmd, args, { stdio: "inherit", ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status})`);
}

const sample = join(work, "sample");
console.log("demo: building the sample Go service (tests/fixtures/go/sample)");
must("go", ["build", "-o", sample, "."], { cwd: join(root, "tests/fixtures/go/sample"), env: { ...process.env, GOFLAGS: "-buildvcs=false" } });

console.log(`\n$ beetrace inspect ${sample}`);
must(beetrace, ["inspect", sample]);

if (process.getuid?.() !== 0) {
  console.log("\ndemo: tracing needs root (BPF and uprobes); re-run as root: sudo bash scripts/demo.sh");
  process.exit(0);
}

const capture = join(work, "capture.cbor");
rmSync(capture, { force: true });
console.log(`\n$ beetrace run --out ${capture} -- ${sample}`);
const tracer = spawn(beetrace, ["run", "--out", capture, "--", sample, "-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
const base = await new Promise<string>((res, rej) => {
  let buf = "";
  const timer = setTimeout(() => rej(new Error("the sample service did not start within 30 s")), 30_000);
  tracer.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    const m = /listening on (\S+)/.exec(buf);
    if (m) {
      clearTimeout(timer);
      res(`http://${m[1]}`);
    }
  });
  tracer.on("exit", (code) => rej(new Error(`beetrace exited early (code ${code})`)));
});

const paths = ["/hello", "/hello", "/items/42", "/items/7", "/fail", "/sleep?ms=25", "/proxy", "/proxy-async"];
for (const p of paths) {
  const r = await fetch(base + p);
  await r.arrayBuffer();
  console.log(`demo: GET ${p} → ${r.status}`);
}
const exited = new Promise<number | null>((res) => tracer.on("exit", (code) => res(code)));
tracer.kill("SIGINT");
const code = await exited;
if (code !== 0) throw new Error(`beetrace exited with ${code}`);

console.log(`\n$ beetrace view ${capture}`);
must(beetrace, ["view", capture]);
console.log(`\ndemo: convert to OTLP JSON Lines with: ${existsSync(beetrace) ? "dist/beetrace" : "beetrace"} convert ${capture} --to otlp-json`);
