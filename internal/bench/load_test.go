package bench

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts h and stops it when the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	u, stop, err := Serve(h)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(stop)
	return u
}

func checkOrdered(t *testing.T, r Result) {
	t.Helper()
	if !(r.P50 > 0 && r.P50 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max) {
		t.Errorf("%s: percentiles out of order: p50=%v p99=%v p999=%v max=%v", r.Target, r.P50, r.P99, r.P999, r.Max)
	}
}

func TestRunClosedLoopNoop(t *testing.T) {
	u := serve(t, NoopHandler())
	res, err := Run(context.Background(), []Target{{Name: "noop", URL: u + "/v1/next", Body: []byte(`{"count":1}`), IDsPerRequest: 2}},
		Options{Clients: 4, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("got %d results, want 1", len(res))
	}
	r := res[0]
	t.Logf("noop: %d requests, %.0f req/s, p50=%v p99=%v p999=%v max=%v", r.Requests, r.Throughput, r.P50, r.P99, r.P999, r.Max)
	if r.Target != "noop" {
		t.Errorf("Target = %q", r.Target)
	}
	if r.Requests <= 0 {
		t.Fatalf("Requests = %d, want > 0", r.Requests)
	}
	if r.Errors != 0 {
		t.Fatalf("Errors = %d (%s), want 0", r.Errors, r.ErrorSample)
	}
	checkOrdered(t, r)
	if len(r.Runs) != 1 {
		t.Fatalf("len(Runs) = %d, want 1", len(r.Runs))
	}
	run := r.Runs[0]
	if run.Elapsed < 300*time.Millisecond {
		t.Errorf("Elapsed = %v, want >= Duration", run.Elapsed)
	}
	if want := float64(r.Requests) / run.Elapsed.Seconds(); !near(r.Throughput, want, 0.001) {
		t.Errorf("Throughput = %v, want %v", r.Throughput, want)
	}
	if !near(r.IDsPerSec, 2*r.Throughput, 0.001) {
		t.Errorf("IDsPerSec = %v, want 2×%v", r.IDsPerSec, r.Throughput)
	}
}

func near(got, want, rel float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= rel*want
}

func TestRunOpenLoopRate(t *testing.T) {
	var hits atomic.Int64
	u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		NoopHandler().ServeHTTP(w, r)
	}))
	start := time.Now()
	res, err := Run(context.Background(), []Target{{Name: "noop", URL: u}},
		Options{Clients: 8, Duration: time.Second, Warmup: -1, Rate: 200, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(start)
	r := res[0]
	t.Logf("open loop: %d requests (%d hits) in %v, %.1f req/s, p50=%v p99=%v", r.Requests, hits.Load(), took, r.Throughput, r.P50, r.P99)
	if r.Errors != 0 {
		t.Fatalf("Errors = %d (%s)", r.Errors, r.ErrorSample)
	}
	if r.Requests < 160 || r.Requests > 240 {
		t.Errorf("Requests = %d, want 200 ± 20%%", r.Requests)
	}
	if h := hits.Load(); h < 160 || h > 240 {
		t.Errorf("server saw %d requests, want 200 ± 20%%", h)
	}
	if r.Throughput < 160 || r.Throughput > 240 {
		t.Errorf("Throughput = %.1f, want 200 ± 20%%", r.Throughput)
	}
	if took < 900*time.Millisecond {
		t.Errorf("run took %v; the schedule should spread requests over 1s", took)
	}
	checkOrdered(t, r)
}

// A target that can serve 50 req/s loaded at 100 req/s by one client:
// requests queue behind each other, and the latency measured from the
// intended send time must show it. A generator with coordinated omission
// would report the 20ms service time.
func TestRunOpenLoopMeasuresFromIntendedTime(t *testing.T) {
	u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		NoopHandler().ServeHTTP(w, r)
	}))
	res, err := Run(context.Background(), []Target{{Name: "slow", URL: u}},
		Options{Clients: 1, Duration: 500 * time.Millisecond, Warmup: -1, Rate: 100, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := res[0]
	t.Logf("slow: %d requests, p50=%v p99=%v max=%v", r.Requests, r.P50, r.P99, r.Max)
	if r.Errors != 0 {
		t.Fatalf("Errors = %d (%s)", r.Errors, r.ErrorSample)
	}
	if r.Requests != 50 {
		t.Errorf("Requests = %d, want the 50 scheduled", r.Requests)
	}
	// Slot i (due at i×10ms) finishes at about (i+1)×20ms: latency grows
	// to about 510ms; the median is about 270ms.
	if r.P50 < 150*time.Millisecond {
		t.Errorf("p50 = %v, want ≥ 150ms (queueing delay must be counted)", r.P50)
	}
	if r.Max < 400*time.Millisecond {
		t.Errorf("max = %v, want ≥ 400ms (queueing delay must be counted)", r.Max)
	}
	checkOrdered(t, r)
}

func TestRunCountsErrors(t *testing.T) {
	u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
	}))
	res, err := Run(context.Background(), []Target{{Name: "broken", URL: u}},
		Options{Clients: 4, Duration: 200 * time.Millisecond, Warmup: -1, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := res[0]
	if r.Requests == 0 || r.Errors != r.Requests {
		t.Fatalf("Requests = %d, Errors = %d; want every request counted as an error", r.Requests, r.Errors)
	}
	if !strings.Contains(r.ErrorSample, "HTTP 500") || !strings.Contains(r.ErrorSample, "boom") {
		t.Errorf("ErrorSample = %q, want the status and body", r.ErrorSample)
	}
	if r.Throughput != 0 || r.P50 != 0 || r.Max != 0 {
		t.Errorf("Throughput = %v, p50 = %v, max = %v; failed requests must not count as served", r.Throughput, r.P50, r.Max)
	}
}

func TestRunSendsBodyAndHeaders(t *testing.T) {
	u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost:
			http.Error(w, "method "+r.Method, http.StatusMethodNotAllowed)
		case r.URL.Path != "/v1/sequences/inv/next":
			http.Error(w, "path "+r.URL.Path, http.StatusNotFound)
		case r.Header.Get("Authorization") != "Bearer t0ken":
			http.Error(w, "auth", http.StatusUnauthorized)
		case r.Header.Get("Content-Type") != "application/json":
			http.Error(w, "content type", http.StatusUnsupportedMediaType)
		case string(b) != `{"count":5}`:
			http.Error(w, "body "+string(b), http.StatusBadRequest)
		default:
			NoopHandler().ServeHTTP(w, r)
		}
	}))
	res, err := Run(context.Background(), []Target{{
		Name:   "body",
		URL:    u + "/v1/sequences/inv/next",
		Body:   []byte(`{"count":5}`),
		Header: http.Header{"Authorization": {"Bearer t0ken"}},
	}}, Options{Clients: 2, Duration: 100 * time.Millisecond, Warmup: -1, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := res[0]; r.Requests == 0 || r.Errors != 0 {
		t.Fatalf("Requests = %d, Errors = %d (%s)", r.Requests, r.Errors, r.ErrorSample)
	}
}

func TestRunDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	other := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	u := serve(t, http.RedirectHandler(other, http.StatusTemporaryRedirect))
	res, err := Run(context.Background(), []Target{{Name: "redirect", URL: u}},
		Options{Clients: 2, Duration: 100 * time.Millisecond, Warmup: -1, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := res[0]; r.Requests == 0 || r.Errors != r.Requests || !strings.Contains(r.ErrorSample, "HTTP 307") {
		t.Errorf("Requests = %d, Errors = %d, sample %q; want every 307 counted as an error", r.Requests, r.Errors, r.ErrorSample)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

func TestRunInterleavesRepeats(t *testing.T) {
	var mu sync.Mutex
	var order []string
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if len(order) == 0 || order[len(order)-1] != name {
				order = append(order, name)
			}
			mu.Unlock()
			NoopHandler().ServeHTTP(w, r)
		})
	}
	targets := []Target{
		{Name: "A", URL: serve(t, handler("A"))},
		{Name: "B", URL: serve(t, handler("B"))},
		{Name: "C", URL: serve(t, handler("C"))},
	}
	res, err := Run(context.Background(), targets, Options{Clients: 2, Duration: 50 * time.Millisecond, Warmup: -1, Repeat: 2})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	got := strings.Join(order, ",")
	mu.Unlock()
	if got != "A,B,C,A,B,C" {
		t.Errorf("targets were loaded in order %s, want A,B,C,A,B,C", got)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	for i, r := range res {
		if r.Target != targets[i].Name {
			t.Errorf("result %d is %q, want %q", i, r.Target, targets[i].Name)
		}
		if len(r.Runs) != 2 || r.Runs[0].Round != 0 || r.Runs[1].Round != 1 {
			t.Errorf("%s: runs %+v, want rounds 0 and 1", r.Target, r.Runs)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	u := serve(t, NoopHandler())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	res, err := Run(ctx, []Target{{Name: "noop", URL: u}}, Options{Clients: 4, Duration: 10 * time.Second, Warmup: -1, Repeat: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run took %v after cancellation", took)
	}
	if len(res) != 0 {
		t.Errorf("got %d results for an interrupted run, want 0", len(res))
	}
}

func TestRunStopsOnCancelOpenLoop(t *testing.T) {
	u := serve(t, NoopHandler())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := Run(ctx, []Target{{Name: "noop", URL: u}}, Options{Clients: 4, Duration: 10 * time.Second, Warmup: -1, Rate: 1, Repeat: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run took %v after cancellation", took)
	}
}

// Requests that hang past the drain period are cancelled and counted.
func TestRunCancelsHungRequests(t *testing.T) {
	release := make(chan struct{})
	u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	start := time.Now()
	res, err := Run(context.Background(), []Target{{Name: "hung", URL: u}},
		Options{Clients: 2, Duration: 100 * time.Millisecond, Warmup: -1, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(start)
	if took > 3*time.Second {
		t.Errorf("Run took %v; hung requests must be cut off after the drain period", took)
	}
	r := res[0]
	if r.Requests != 2 || r.Errors != 2 {
		t.Errorf("Requests = %d, Errors = %d; want both hung requests counted as errors", r.Requests, r.Errors)
	}
	if !strings.Contains(r.ErrorSample, "drain") {
		t.Errorf("ErrorSample = %q, want it to mention the drain period", r.ErrorSample)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	ok := Target{Name: "ok", URL: "http://127.0.0.1:1/"}
	cases := map[string]struct {
		targets []Target
		opts    Options
	}{
		"no targets":     {nil, Options{}},
		"no name":        {[]Target{{URL: ok.URL}}, Options{}},
		"duplicate name": {[]Target{ok, ok}, Options{}},
		"relative URL":   {[]Target{{Name: "x", URL: "/v1/next"}}, Options{}},
		"bad scheme":     {[]Target{{Name: "x", URL: "ftp://127.0.0.1/"}}, Options{}},
		"negative IDs":   {[]Target{{Name: "x", URL: ok.URL, IDsPerRequest: -1}}, Options{}},
		"negative rate":  {[]Target{ok}, Options{Rate: -1}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Run(context.Background(), c.targets, c.opts); err == nil {
				t.Errorf("Run accepted %s", name)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Microsecond
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.999, 999 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		if got := percentile(lat, c.q); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile(lat[:1], 0.999); got != time.Microsecond {
		t.Errorf("percentile of one value = %v", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of none = %v", got)
	}
}

func TestResultOfPicksMedianRun(t *testing.T) {
	runs := []RunResult{
		{Round: 0, Throughput: 300, P99: 3},
		{Round: 1, Throughput: 100, P99: 1, Errors: 1, ErrorSample: "HTTP 500"},
		{Round: 2, Throughput: 200, P99: 2},
	}
	r := resultOf("x", runs)
	if r.Throughput != 200 || r.P99 != 2 {
		t.Errorf("median of 3: throughput %v p99 %v, want round 2's", r.Throughput, r.P99)
	}
	if r.Errors != 0 || r.ErrorSample != "HTTP 500" {
		t.Errorf("Errors = %d, ErrorSample = %q; want median's count and another run's sample", r.Errors, r.ErrorSample)
	}
	if r.ErrorRuns() != 1 || len(r.Runs) != 3 || r.Runs[0].Round != 0 {
		t.Errorf("ErrorRuns = %d, Runs = %+v", r.ErrorRuns(), r.Runs)
	}
	even := resultOf("y", append(runs, RunResult{Round: 3, Throughput: 400}))
	if even.Throughput != 200 {
		t.Errorf("median of 4 = %v, want the lower middle 200", even.Throughput)
	}
}
