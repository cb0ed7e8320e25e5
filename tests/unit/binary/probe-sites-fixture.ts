/**
 * @module tests/unit/binary/probe-sites-fixture — a small net/http server + client program
 * (HTTP/1.1 and HTTP/2 over TLS, a handler that hijacks its connection) built with a chosen Go
 * toolchain and GOARCH, for the probe-site tests and the marker inventory (probe-inventory.ts).
 *
 * Hijack and HTTP/2 must be really used, or the linker drops (*response).Hijack and the h2
 * server. Builds are cached in the gitignored .cache/probe-sites/ by hash of source, toolchain
 * and GOARCH; the go command downloads a pinned toolchain (GOTOOLCHAIN=go1.x.y) on first use.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CACHE = join(ROOT, ".cache", "probe-sites");

export const PROBE_FIXTURE_GO = `package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello", r.Proto)
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "cannot hijack", http.StatusInternalServerError)
			return
		}
		c, brw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nhj\\n")
		_ = brw.Flush()
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	for _, p := range []string{"/hello", "/hijack"} {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			fmt.Println(p, err)
			continue
		}
		b, _ := io.ReadAll(bufio.NewReader(resp.Body))
		resp.Body.Close()
		fmt.Print(p, " ", resp.Proto, " ", string(b))
	}
}
`;

/** Build the fixture; `toolchain` "local" = the machine's go. Returns the binary's path. */
export function buildProbeFixture(opts: { toolchain?: string; goarch?: "amd64" | "arm64"; pie?: boolean } = {}): string {
  const toolchain = opts.toolchain ?? "local";
  const goarch = opts.goarch ?? "amd64";
  // -buildvcs (Go 1.18+): the fixture is built inside a git checkout. go1.17 knows no such flag,
  // and an empty GOFLAGS would fall back to the user's go env file, so that file is ignored too.
  const old = /^go1\.(\d|1[0-7])(\.|$)/.test(toolchain);
  const env: NodeJS.ProcessEnv = { ...process.env, GOTOOLCHAIN: toolchain, CGO_ENABLED: "0", GOFLAGS: old ? "" : "-buildvcs=false", GOOS: "linux", GOARCH: goarch, GOWORK: "off" };
  if (old) env.GOENV = "off";
  delete env.GOAMD64;
  delete env.GOARM64;
  delete env.GOEXPERIMENT;
  const goVersion = execFileSync("go", ["env", "GOVERSION"], { env, encoding: "utf8", cwd: ROOT }).trim();
  const key = createHash("sha256")
    .update(JSON.stringify({ src: PROBE_FIXTURE_GO, goVersion, goarch, pie: opts.pie ?? false }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(CACHE, `${goVersion}-${goarch}${opts.pie ? "-pie" : ""}-${key}`);
  const bin = join(dir, "app");
  if (existsSync(bin)) return bin;
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(join(tmp, "main.go"), PROBE_FIXTURE_GO);
    // go 1.17 in go.mod: the oldest toolchain the inventory tries; newer ones accept it.
    writeFileSync(join(tmp, "go.mod"), "module probesitesfixture\n\ngo 1.17\n");
    const args = ["build", "-o", "app", ...(opts.pie ? ["-buildmode=pie"] : []), "."];
    execFileSync("go", args, { cwd: tmp, env, stdio: ["ignore", "ignore", "pipe"] });
    mkdirSync(CACHE, { recursive: true });
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(bin)) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}
