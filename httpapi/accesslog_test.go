package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot/allot/internal/testkit"
	"github.com/allot/allot/wire"
)

// logLines decodes the JSON log lines written to l so far.
func logLines(t *testing.T, l *testkit.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// logEnv is a Server over e's Service logging JSON at level into a
// buffer, with limits set before it serves.
func logEnv(t *testing.T, e *env, level slog.Level, limits func(*errorLog)) (*Server, *httptest.Server, *testkit.Buffer) {
	t.Helper()
	logs := &testkit.Buffer{}
	s, err := New(Config{Service: e.svc, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	if limits != nil {
		limits(s.errs)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv, logs
}

func send(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode
}

// TestErrorAccessLog checks the Info line of each 4xx and 5xx response,
// and that successes are not logged at Info.
func TestErrorAccessLog(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"gone","capacity":0}`)
	s, srv, logs := logEnv(t, e, slog.LevelInfo, nil)

	if got := send(t, srv, "GET", "/healthz", ""); got != 200 {
		t.Fatalf("healthz %d", got)
	}
	if got := send(t, srv, "GET", "/v1/sequences/nope", "", "X-Request-Id", "req-404"); got != 404 {
		t.Fatalf("status %d", got)
	}
	if got := send(t, srv, "POST", "/v1/pools/gone/claims", `{"customer":"a"}`, "X-Request-Id", "req-409"); got != 409 {
		t.Fatalf("status %d", got)
	}
	if got := send(t, srv, "GET", "/v1/pools?x=1", "", "X-Request-Id", "req-400"); got != 400 {
		t.Fatalf("status %d", got)
	}
	// A 500 keeps its Error line with the error, and gets an access line.
	h := s.endpoint("GET /boom", public, func(*Server, http.ResponseWriter, *http.Request) outcome { panic("kaboom") })
	req := httptest.NewRequest("GET", "/boom", nil)
	req.Header.Set("X-Request-Id", "req-500")
	h.ServeHTTP(httptest.NewRecorder(), req)

	want := []map[string]any{
		{"level": "INFO", "msg": "request", "request_id": "req-404", "method": "GET", "path": "/v1/sequences/nope",
			"route": "GET /v1/sequences/{name}", "status": 404.0, "code": "not_found"},
		{"level": "INFO", "msg": "request", "request_id": "req-409", "method": "POST", "path": "/v1/pools/gone/claims",
			"route": "POST /v1/pools/{name}/claims", "status": 409.0, "code": "sold_out"},
		{"level": "INFO", "msg": "request", "request_id": "req-400", "method": "GET", "path": "/v1/pools",
			"route": "GET /v1/pools", "status": 400.0, "code": "invalid_request"},
		{"level": "ERROR", "msg": "internal error", "request_id": "req-500"},
		{"level": "INFO", "msg": "request", "request_id": "req-500", "method": "GET", "path": "/boom",
			"route": "GET /boom", "status": 500.0, "code": "internal"},
	}
	got := logLines(t, logs)
	if len(got) != len(want) {
		t.Fatalf("%d log lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		for k, v := range w {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, got[i][k], v, got[i])
			}
		}
		if w["msg"] == "request" {
			if _, ok := got[i]["duration"].(float64); !ok {
				t.Errorf("line %d has no duration: %v", i, got[i])
			}
		}
	}
	if !strings.Contains(got[3]["err"].(string), "kaboom") {
		t.Errorf("the Error line lacks the error: %v", got[3])
	}
}

// TestErrorAccessLogIsBounded floods one (route, status): the Info lines
// stay within the token bucket, and the summaries account for every
// response that was not logged.
func TestErrorAccessLogIsBounded(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"gone","capacity":0}`)
	const summary = 300 * time.Millisecond
	_, srv, logs := logEnv(t, e, slog.LevelInfo, func(el *errorLog) {
		el.setLimits(time.Second/errLogRate, errLogBurst, summary, 10*time.Millisecond)
	})
	const flood = 200
	start := time.Now()
	for i := range flood {
		if got := send(t, srv, "POST", "/v1/pools/gone/claims", `{"customer":"c`+string(rune('a'+i%26))+`"}`); got != 409 {
			t.Fatalf("status %d", got)
		}
		if i%50 == 0 {
			send(t, srv, "GET", "/v1/sequences/nope", "") // another (route, status)
		}
	}
	elapsed := time.Since(start)
	time.Sleep(summary + 50*time.Millisecond)
	send(t, srv, "GET", "/healthz", "") // any request writes the summaries due

	var logged, suppressed, summaries int
	for _, l := range logLines(t, logs) {
		switch {
		case l["msg"] == "request" && l["route"] == "POST /v1/pools/{name}/claims":
			logged++
		case strings.HasPrefix(l["msg"].(string), "suppressed ") && l["route"] == "POST /v1/pools/{name}/claims":
			n := int(l["suppressed"].(float64))
			if l["msg"] != "suppressed "+strconv.Itoa(n)+" similar responses" || l["status"] != 409.0 || l["level"] != "INFO" {
				t.Errorf("summary %v", l)
			}
			suppressed += n
			summaries++
		case l["msg"] == "request" && l["route"] == "GET /v1/sequences/{name}":
		default:
			t.Errorf("unexpected line %v", l)
		}
	}
	limit := errLogBurst + int(elapsed.Seconds()*errLogRate) + 1
	t.Logf("%d responses in %s: %d logged (at most %d), %d suppressed in %d summaries", flood, elapsed, logged, limit, suppressed, summaries)
	if logged < errLogBurst || logged > limit {
		t.Errorf("%d lines logged, want %d to %d", logged, errLogBurst, limit)
	}
	if logged+suppressed != flood || summaries == 0 {
		t.Errorf("%d logged + %d suppressed, want %d", logged, suppressed, flood)
	}
	if max := int(elapsed/summary) + 2; summaries > max {
		t.Errorf("%d summaries in %s, want at most %d", summaries, elapsed, max)
	}
}

// TestErrorLogLimiter drives one limiter and the summaries with made-up
// times.
func TestErrorLogLimiter(t *testing.T) {
	logs := &testkit.Buffer{}
	el := newErrorLog(slog.New(slog.NewJSONHandler(logs, nil)))
	ms := int64(time.Millisecond)
	l := el.newLimiter("GET /x", 409, 0)
	take := func(now int64, n int) (allowed int) {
		for range n {
			if l.allow(el, now) {
				allowed++
			} else {
				el.suppress(l)
			}
		}
		return allowed
	}
	if got := take(0, 25); got != errLogBurst {
		t.Fatalf("burst: %d allowed", got)
	}
	if got := take(199*ms, 1); got != 0 {
		t.Fatalf("before a token is back: %d allowed", got)
	}
	if got := take(200*ms, 2); got != 1 {
		t.Fatalf("after 200ms: %d allowed", got)
	}
	ctx := context.Background()
	el.sweepIfDue(ctx, 5000*ms) // too early for a summary
	if n := len(logLines(t, logs)); n != 0 || !el.pending.Load() {
		t.Fatalf("summary before 10s: %d lines, pending %v", n, el.pending.Load())
	}
	el.sweepIfDue(ctx, 10000*ms)
	lines := logLines(t, logs)
	if len(lines) != 1 || lines[0]["msg"] != "suppressed 7 similar responses" || lines[0]["suppressed"] != 7.0 ||
		lines[0]["route"] != "GET /x" || lines[0]["status"] != 409.0 {
		t.Fatalf("summary: %v", lines)
	}
	if el.pending.Load() {
		t.Fatal("still pending after the summary")
	}
	// The bucket is full again after a quiet spell.
	if got := take(15000*ms, 21); got != errLogBurst {
		t.Fatalf("second burst: %d allowed", got)
	}
	el.sweepIfDue(ctx, 15500*ms) // under 10s since the last summary
	if n := len(logLines(t, logs)); n != 1 || !el.pending.Load() {
		t.Fatalf("%d lines, pending %v: want no second summary yet", n, el.pending.Load())
	}
	el.sweepIfDue(ctx, 20000*ms)
	if lines := logLines(t, logs); len(lines) != 2 || lines[1]["suppressed"] != 1.0 {
		t.Fatalf("second summary: %v", lines)
	}
	// Nothing more to report: no line, nothing pending.
	el.sweepIfDue(ctx, 40000*ms)
	if lines := logLines(t, logs); len(lines) != 2 || el.pending.Load() {
		t.Fatalf("after the last summary: %v, pending %v", lines, el.pending.Load())
	}
}

// TestErrorLogSweepsAtMostEverySweep checks that the request path looks
// for due summaries at most once per sweep interval.
func TestErrorLogSweepsAtMostEverySweep(t *testing.T) {
	logs := &testkit.Buffer{}
	el := newErrorLog(slog.New(slog.NewJSONHandler(logs, nil)))
	ms := int64(time.Millisecond)
	l := el.newLimiter("GET /x", 404, 0)
	el.suppress(l)
	ctx := context.Background()
	el.sweepIfDue(ctx, 9500*ms)  // a look: not due yet
	el.sweepIfDue(ctx, 10000*ms) // within a second of the last look: skipped
	if n := len(logLines(t, logs)); n != 0 {
		t.Fatalf("%d lines", n)
	}
	el.sweepIfDue(ctx, 10500*ms)
	if lines := logLines(t, logs); len(lines) != 1 || lines[0]["suppressed"] != 1.0 {
		t.Fatalf("summary: %v", lines)
	}
}

// TestErrorLogAtDebug checks that at Debug level every request is still
// logged: the lines over the limit at Debug instead of Info.
func TestErrorLogAtDebug(t *testing.T) {
	e := newEnv(t, nil)
	_, srv, logs := logEnv(t, e, slog.LevelDebug, func(el *errorLog) { el.setLimits(time.Hour, 1, time.Hour, time.Hour) })
	for range 3 {
		send(t, srv, "GET", "/v1/sequences/nope", "")
	}
	send(t, srv, "GET", "/healthz", "")
	var levels []string
	for _, l := range logLines(t, logs) {
		if l["msg"] == "request" {
			levels = append(levels, l["level"].(string)+" "+strconv.Itoa(int(l["status"].(float64))))
		}
	}
	if got := strings.Join(levels, ", "); got != "INFO 404, DEBUG 404, DEBUG 404, DEBUG 200" {
		t.Fatalf("lines: %s", got)
	}
}

// TestErrorLogSuppressedAllocs checks that a response over the limit
// allocates nothing in the access log.
func TestErrorLogSuppressedAllocs(t *testing.T) {
	e := newEnv(t, nil)
	s, err := New(Config{Service: e.svc, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ep := s.endpoint("POST /v1/pools/{name}/claims", clientLevel, nil)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/v1/pools/gone/claims", nil)
	start, out := time.Now(), outcome{status: 409, code: wire.CodeSoldOut}
	for range errLogBurst + 1 {
		ep.logRequest(w, r, out, start, time.Millisecond)
	}
	if n := testing.AllocsPerRun(1000, func() { ep.logRequest(w, r, out, start, time.Millisecond) }); n != 0 {
		t.Fatalf("%v allocations per suppressed response", n)
	}
	if got := ep.limits.get(409, 0).suppressed.Load(); got < 1000 {
		t.Fatalf("%d suppressed", got)
	}
}

// BenchmarkErrorLogSuppressed is the access log's cost for a response
// over the limit, from parallel requests of one (route, status).
func BenchmarkErrorLogSuppressed(b *testing.B) {
	s, err := New(Config{Service: newEnv(b, nil).svc, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ep := s.endpoint("POST /v1/pools/{name}/claims", clientLevel, nil)
	out := outcome{status: 409, code: wire.CodeSoldOut}
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v1/pools/gone/claims", nil)
		for pb.Next() {
			ep.logRequest(w, r, out, start, time.Since(start))
		}
	})
}
