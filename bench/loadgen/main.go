// Command loadgen sends HTTP GETs at a fixed rate (open loop) and prints latency percentiles as
// one JSON object. Used by bench/latency.sh to compare an untraced, a traced and a no-op-probed
// Go service under the same offered load.
//
// Fixed rate, not fixed concurrency: request i is due at start + i/rate whatever happened to
// earlier ones, and its latency is measured from that due time (like wrk2), so a stall shows up
// in the percentiles instead of silently lowering the request rate ("coordinated omission").
// The time from the actual send is reported too, as "service".
//
//	loadgen -url http://127.0.0.1:8080/hello -rate 500 -duration 10s -warmup 2s -conns 16
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"
)

type summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

type result struct {
	URL          string  `json:"url"`
	Rate         float64 `json:"rate"`
	DurationS    float64 `json:"durationS"`
	Sent         int     `json:"sent"`
	OK           int     `json:"ok"`
	Errors       int     `json:"errors"`
	Non200       int     `json:"non200"`
	AchievedRate float64 `json:"achievedRate"`
	// Microseconds from the due time (includes waiting for a free connection).
	Latency summary `json:"latencyUs"`
	// Microseconds from the actual send.
	Service summary `json:"serviceUs"`
}

// summarize uses nearest-rank percentiles over the sorted samples (µs).
func summarize(v []float64) summary {
	if len(v) == 0 {
		return summary{}
	}
	sort.Float64s(v)
	at := func(p float64) float64 {
		r := int(p/100*float64(len(v)) + 0.999999)
		if r < 1 {
			r = 1
		}
		if r > len(v) {
			r = len(v)
		}
		return v[r-1]
	}
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return summary{N: len(v), Mean: sum / float64(len(v)), P50: at(50), P90: at(90), P99: at(99), P999: at(99.9), Max: v[len(v)-1]}
}

func main() {
	url := flag.String("url", "", "URL to GET")
	rate := flag.Float64("rate", 500, "requests per second (fixed, open loop)")
	duration := flag.Duration("duration", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 2*time.Second, "load before measuring (not recorded)")
	conns := flag.Int("conns", 16, "concurrent requests / keep-alive connections")
	flag.Parse()
	if *url == "" || *rate <= 0 || *conns <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -url is required; -rate and -conns must be positive")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	interval := time.Duration(float64(time.Second) / *rate)
	total := int(*rate * (warmup.Seconds() + duration.Seconds()))
	warm := int(*rate * warmup.Seconds())
	due := make(chan struct {
		i  int
		at time.Time
	}, total)

	var mu sync.Mutex
	lat := make([]float64, 0, total-warm)
	svc := make([]float64, 0, total-warm)
	var ok, errs, non200 int
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range due {
				sent := time.Now()
				resp, err := client.Get(*url)
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				done := time.Now()
				if d.i < warm {
					continue
				}
				mu.Lock()
				switch {
				case err != nil:
					errs++
				case code != http.StatusOK:
					non200++
				default:
					ok++
					lat = append(lat, float64(done.Sub(d.at).Nanoseconds())/1e3)
					svc = append(svc, float64(done.Sub(sent).Nanoseconds())/1e3)
				}
				mu.Unlock()
			}
		}()
	}

	// SIGINT or SIGTERM ends the load early, still with a summary of what was sent: a driver
	// that measures in windows of its own (bench/service-overhead.ts) stops it when done.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	start := time.Now()
	var measureStart time.Time
	scheduled := total
	for i := 0; i < total; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		select {
		case <-stop:
			scheduled = i
		default:
		}
		if scheduled != total {
			break
		}
		if i == warm {
			measureStart = time.Now()
		}
		due <- struct {
			i  int
			at time.Time
		}{i, at}
	}
	close(due)
	wg.Wait()
	elapsed := 0.0
	if !measureStart.IsZero() {
		elapsed = time.Since(measureStart).Seconds()
	}
	achieved := 0.0
	if elapsed > 0 {
		achieved = float64(ok+errs+non200) / elapsed
	}

	res := result{
		URL: *url, Rate: *rate, DurationS: duration.Seconds(),
		Sent: max(0, scheduled-warm), OK: ok, Errors: errs, Non200: non200,
		AchievedRate: achieved,
		Latency:      summarize(lat), Service: summarize(svc),
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if errs > 0 || non200 > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: %d errors, %d non-200 responses\n", errs, non200)
	}
}
