package bench

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func claimsResults() []Result {
	return []Result{
		{Target: "baseline noop", Requests: 50000, Throughput: 10000, P50: time.Millisecond, P99: 2 * time.Millisecond, P999: 3 * time.Millisecond, Max: 4 * time.Millisecond,
			Runs: []RunResult{{Throughput: 10000}}},
		{Target: "baseline naive", Requests: 5000, Throughput: 1000, P50: 10 * time.Millisecond, P99: 20 * time.Millisecond, P999: 30 * time.Millisecond, Max: 40 * time.Millisecond,
			Runs: []RunResult{{Throughput: 1000}}},
		{Target: "allot | claims", Requests: 20000, Errors: 2, Throughput: 4000, P50: 5 * time.Millisecond, P99: 9 * time.Millisecond, P999: 12 * time.Millisecond, Max: 15 * time.Millisecond,
			ErrorSample: "HTTP 500", Runs: []RunResult{{Throughput: 3000, Errors: 2}, {Throughput: 4000}}},
	}
}

func TestMarkdownRatios(t *testing.T) {
	md := MarkdownRatios(claimsResults(), "baseline noop", "baseline naive", "baseline redis")
	t.Log("\n" + md)
	lines := strings.Split(md, "\n")
	if want := "| target | req/s (median) | p50 | p99 | p999 | errors | × noop | × naive | × redis |"; lines[0] != want {
		t.Errorf("header = %q, want %q", lines[0], want)
	}
	if want := "|---|--:|--:|--:|--:|--:|--:|--:|--:|"; lines[1] != want {
		t.Errorf("rule = %q, want %q", lines[1], want)
	}
	if want := `| allot \| claims | 4,000 | 5.00ms | 9.00ms | 12.0ms | 2 (0.01%) | 0.40× | 4.00× | n/a |`; lines[4] != want {
		t.Errorf("allot row = %q, want %q", lines[4], want)
	}
	if !strings.Contains(md, "1 of 2 runs had errors") {
		t.Errorf("error sample missing:\n%s", md)
	}
}

func TestTextRatios(t *testing.T) {
	txt := TextRatios(claimsResults(), "baseline noop", "baseline naive")
	t.Log("\n" + txt)
	lines := strings.Split(txt, "\n")
	w := len([]rune(lines[0]))
	for _, l := range lines[1:4] {
		if len([]rune(l)) != w {
			t.Errorf("misaligned table:\n%s", txt)
			break
		}
	}
	for _, want := range []string{"× noop", "× naive", "10.00×", "0.40×", "25.0%", "errors: allot | claims (1 of 2 runs): HTTP 500"} {
		if !strings.Contains(txt, want) {
			t.Errorf("TextRatios lacks %q:\n%s", want, txt)
		}
	}
}

func flashResults() []FlashSaleResult {
	exact := func(target string, sellOut time.Duration) FlashSaleResult {
		return FlashSaleResult{Target: target, Customers: 50000, Capacity: 5000, Claimed: 5000, SoldOut: 45000, Confirmed: 5000, Confirming: true,
			SellOut: sellOut, ClaimPhase: sellOut + time.Second, Total: sellOut + 2*time.Second,
			P50: time.Millisecond, P99: 80 * time.Millisecond, P999: 100 * time.Millisecond, HeldP50: 20 * time.Millisecond, HeldP99: 90 * time.Millisecond,
			ConfirmP50: 3 * time.Millisecond, ConfirmP99: 7 * time.Millisecond}
	}
	bad := exact("baseline | redis", 3*time.Second)
	bad.Claimed, bad.Confirmed, bad.SoldOut, bad.Errors, bad.ErrorSample = 4999, 4999, 45000, 1, "HTTP 500: {\"code\":\"internal\"}"
	return []FlashSaleResult{
		exact("allot", 2*time.Second), exact("baseline | redis", time.Second),
		exact("allot", 900*time.Millisecond), bad,
		exact("allot", 5*time.Second), exact("baseline | redis", 2*time.Second),
	}
}

func TestSummarizeFlashSales(t *testing.T) {
	sums := SummarizeFlashSales(flashResults())
	if len(sums) != 2 || sums[0].Target != "allot" || sums[1].Target != "baseline | redis" {
		t.Fatalf("summaries: %+v", sums)
	}
	if len(sums[0].Runs) != 3 || sums[0].Runs[1].SellOut != 900*time.Millisecond {
		t.Errorf("runs not kept in order: %+v", sums[0].Runs)
	}
	if sums[0].Median.SellOut != 2*time.Second {
		t.Errorf("median sell-out %v, want 2s", sums[0].Median.SellOut)
	}
	if !sums[0].AllExact() || sums[1].AllExact() || sums[1].ExactRuns() != 2 {
		t.Errorf("exactness: allot %d/3, redis %d/3", sums[0].ExactRuns(), sums[1].ExactRuns())
	}
}

func TestFlashSaleMarkdown(t *testing.T) {
	md := FlashSaleMarkdown(flashResults())
	t.Log("\n" + md)
	lines := strings.Split(md, "\n")
	if want := "| design | exact runs | confirmed | sold out | errors | sell-out | claim p50 | claim p99 | held p99 | confirm p99 | total |"; lines[0] != want {
		t.Errorf("header = %q", lines[0])
	}
	if want := "| allot | yes 3/3 | 5,000 | 45,000 | 0 | 2.00s | 1.00ms | 80.0ms | 90.0ms | 7.00ms | 4.00s |"; lines[2] != want {
		t.Errorf("allot row = %q, want %q", lines[2], want)
	}
	if want := `| baseline \| redis | NO 2/3 | 4,999–5,000 | 45,000 | 0–1 | 2.00s |`; !strings.HasPrefix(lines[3], want) {
		t.Errorf("redis row = %q, want it to start %q", lines[3], want)
	}
	for _, want := range []string{"here 5,000 confirmed, 45,000 sold out", "baseline \\| redis run 2 not exact: 4,999 held", `e.g. HTTP 500: {"code":"internal"}`} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestFlashSaleText(t *testing.T) {
	txt := FlashSaleText(flashResults())
	t.Log("\n" + txt)
	lines := strings.Split(txt, "\n")
	w := len([]rune(lines[0]))
	for _, l := range lines[1:3] {
		if len([]rune(l)) != w {
			t.Errorf("misaligned table:\n%s", txt)
			break
		}
	}
	for _, want := range []string{"claim phase", "yes 3/3", "NO 2/3", "3.00s", "baseline | redis run 2 not exact"} {
		if !strings.Contains(txt, want) {
			t.Errorf("FlashSaleText lacks %q:\n%s", want, txt)
		}
	}
}

// BodyFunc gives every request its own body, numbered across runs; Body
// stays as it was for targets without one.
func TestRunBodyFunc(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies = map[string]int{}
		types  = map[string]bool{}
	)
	u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[string(b)]++
		types[r.Header.Get("Content-Type")] = true
		mu.Unlock()
	}))
	res, err := Run(context.Background(), []Target{{
		Name: "varying", URL: u,
		Body: []byte(`{"ignored":true}`),
		BodyFunc: func(i uint64) []byte {
			return []byte(`{"customer":"c-` + strings.Repeat("x", int(i%3)) + `","i":` + strconv.FormatUint(i, 10) + `}`)
		},
	}}, Options{Clients: 4, Duration: 100 * time.Millisecond, Warmup: -1, Repeat: 2})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var sent int64
	for _, run := range res[0].Runs {
		sent += run.Requests
	}
	if int64(len(bodies)) != sent || sent == 0 {
		t.Errorf("%d distinct bodies for %d requests", len(bodies), sent)
	}
	for b, n := range bodies {
		if n != 1 || strings.Contains(b, "ignored") {
			t.Errorf("body %q seen %d times", b, n)
		}
	}
	if !types["application/json"] || len(types) != 1 {
		t.Errorf("Content-Types %v, want application/json", types)
	}
}
