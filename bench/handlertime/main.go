// handlertime: an HTTP server whose handler measures its own body with time.Now(), so a bench
// can compare each traced server span's duration with the time the handler itself saw
// (bench/span-overhead.ts). GET /work/{n} does a fixed small amount of work; GET /durations
// returns the handler times of every /work request so far, in arrival order, as JSON (ns).
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	flag.Parse()
	var mu sync.Mutex
	var durations []int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /work/{n}", func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sum := sha256.Sum256([]byte(r.PathValue("n")))
		for i := 0; i < 20; i++ {
			sum = sha256.Sum256(sum[:])
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%x\n", sum[:4])
		d := time.Since(t0)
		mu.Lock()
		durations = append(durations, d.Nanoseconds())
		mu.Unlock()
	})
	mux.HandleFunc("GET /durations", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(durations)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	_ = http.Serve(ln, mux)
}
