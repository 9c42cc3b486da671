package bench

import (
	"strings"
	"testing"
	"time"
)

func sampleResults() []Result {
	return []Result{
		{
			Target: "baseline noop", Requests: 50000, Throughput: 10000, IDsPerSec: 10000,
			P50: 800 * time.Microsecond, P99: 2500 * time.Microsecond, P999: 12 * time.Millisecond, Max: 40 * time.Millisecond,
			Runs: []RunResult{{Throughput: 9000}, {Throughput: 10000}, {Throughput: 11000}},
		},
		{
			Target: "allot cached | count=10", Requests: 25000, Errors: 5, Throughput: 5000, IDsPerSec: 50000,
			P50: 1500 * time.Microsecond, P99: 30 * time.Millisecond, P999: 250 * time.Millisecond, Max: 1200 * time.Millisecond,
			ErrorSample: "HTTP 503:\n{\"error\":\"busy\"}",
			Runs:        []RunResult{{Throughput: 5000, Errors: 5}},
		},
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown(sampleResults(), "baseline noop")
	t.Log("\n" + md)
	lines := strings.Split(md, "\n")
	if lines[0] != "| target | req/s (median) | IDs/s | p50 | p99 | p999 | errors | × baseline |" {
		t.Errorf("header = %q", lines[0])
	}
	if want := "| baseline noop | 10,000 | 10,000 | 800µs | 2.50ms | 12.0ms | 0 | 1.00× |"; lines[2] != want {
		t.Errorf("baseline row = %q, want %q", lines[2], want)
	}
	if want := `| allot cached \| count=10 | 5,000 | 50,000 | 1.50ms | 30.0ms | 250ms | 5 (0.02%) | 0.50× |`; lines[3] != want {
		t.Errorf("allot row = %q, want %q", lines[3], want)
	}
	if !strings.Contains(md, "1 of 1 runs had errors") || !strings.Contains(md, `HTTP 503: {"error":"busy"}`) {
		t.Errorf("error sample missing or not on one line:\n%s", md)
	}

	missing := Markdown(sampleResults(), "baseline nextval")
	if strings.Contains(missing, "×  |") || !strings.Contains(missing, "| n/a |") || strings.Contains(missing, "1.00×") {
		t.Errorf("with an unmeasured baseline the ratio must be n/a:\n%s", missing)
	}
}

func TestText(t *testing.T) {
	txt := Text(sampleResults(), "baseline noop")
	t.Log("\n" + txt)
	lines := strings.Split(txt, "\n")
	if len(lines) < 3 {
		t.Fatalf("too short:\n%s", txt)
	}
	// Columns are aligned: every table line has the same width.
	w := len([]rune(lines[0]))
	for _, l := range lines[1:3] {
		if len([]rune(l)) != w {
			t.Errorf("misaligned table:\n%s", txt)
			break
		}
	}
	for _, want := range []string{"baseline noop", "10,000", "1.00×", "0.50×", "1.20s", "20.0%", `errors: allot cached | count=10 (1 of 1 runs): HTTP 503: {"error":"busy"}`} {
		if !strings.Contains(txt, want) {
			t.Errorf("Text lacks %q:\n%s", want, txt)
		}
	}
	if !strings.HasPrefix(lines[1], "baseline noop ") {
		t.Errorf("target column should be left-aligned: %q", lines[1])
	}
}

func TestFormatLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "-",
		4500 * time.Nanosecond:  "4.5µs",
		87 * time.Microsecond:   "87µs",
		1234 * time.Microsecond: "1.23ms",
		45 * time.Millisecond:   "45.0ms",
		450 * time.Millisecond:  "450ms",
		2 * time.Second:         "2.00s",
	} {
		if got := formatLatency(d); got != want {
			t.Errorf("formatLatency(%v) = %q, want %q", d, got, want)
		}
	}
	for _, c := range []struct {
		requests, errors int64
		want             string
	}{{10, 0, "0"}, {10, 10, "10 (100%)"}, {1000, 125, "125 (12%)"}, {1000, 5, "5 (0.50%)"}, {1000000, 1, "1 (<0.01%)"}} {
		if got := formatErrors(Result{Requests: c.requests, Errors: c.errors}); got != c.want {
			t.Errorf("formatErrors(%d of %d) = %q, want %q", c.errors, c.requests, got, c.want)
		}
	}
	for v, want := range map[float64]string{0: "0", 2.5: "2.50", 999: "999", 1234567.4: "1,234,567"} {
		if got := formatRate(v); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", v, got, want)
		}
	}
}
