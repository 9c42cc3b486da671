package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/allot/allot/internal/testdb"
)

// testPool returns a pool whose connections use a fresh schema, dropped
// when the test ends (see internal/testdb: a missing PostgreSQL fails the
// test in CI and skips it elsewhere).
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the schema is dropped
	return pool
}

// takeIDs sends n requests from workers goroutines and returns the IDs
// answered, failing the test on any error.
func takeIDs(t *testing.T, u string, n, workers int) []int64 {
	t.Helper()
	var (
		mu   sync.Mutex
		ids  []int64
		errs []string
		wg   sync.WaitGroup
	)
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	for range workers {
		wg.Go(func() {
			for range jobs {
				id, err := postForID(u)
				mu.Lock()
				if err != nil {
					errs = append(errs, err.Error())
				} else {
					ids = append(ids, id)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed, e.g. %s", len(errs), n, errs[0])
	}
	return ids
}

func postForID(u string) (int64, error) {
	resp, err := http.Post(u, "application/json", strings.NewReader(`{"count":1}`))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		IDs   []string `json:"ids"`
		Error string   `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("HTTP %d: decode: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body.Error)
	}
	if len(body.IDs) != 1 {
		return 0, fmt.Errorf("got %d ids, want 1", len(body.IDs))
	}
	return strconv.ParseInt(body.IDs[0], 10, 64)
}

func checkDistinct(t *testing.T, ids []int64) {
	t.Helper()
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if id <= 0 {
			t.Errorf("id %d is not positive", id)
		}
		if seen[id] {
			t.Errorf("id %d handed out twice", id)
		}
		seen[id] = true
	}
}

func TestNextvalBaseline(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	u := serve(t, NextvalHandler(pool))

	// Without its sequence the handler fails, with 500.
	if _, err := postForID(u); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("request before SetupNextval: err = %v, want HTTP 500", err)
	}

	if err := SetupNextval(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := SetupNextval(ctx, pool); err != nil {
		t.Fatalf("SetupNextval is not idempotent: %v", err)
	}
	if err := Reset(ctx, pool); err != nil {
		t.Fatal(err)
	}

	res, err := Run(ctx, []Target{{Name: "baseline nextval", URL: u}},
		Options{Clients: 16, Duration: 500 * time.Millisecond, Warmup: -1, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := res[0]
	t.Logf("nextval: %d requests, %.0f req/s, p50=%v p99=%v", r.Requests, r.Throughput, r.P50, r.P99)
	if r.Requests == 0 || r.Errors != 0 {
		t.Fatalf("Requests = %d, Errors = %d (%s)", r.Requests, r.Errors, r.ErrorSample)
	}
	checkOrdered(t, r)
	// With no warmup every request sent was measured, and each took one
	// value.
	var last int64
	if err := pool.QueryRow(ctx, "SELECT last_value FROM "+NextvalSequence).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if last != r.Requests {
		t.Errorf("sequence at %d after %d successful requests", last, r.Requests)
	}

	ids := takeIDs(t, u, 400, 32)
	checkDistinct(t, ids)
	for _, id := range ids {
		if id <= last {
			t.Errorf("id %d was already handed out during the load run (sequence was at %d)", id, last)
			break
		}
	}

	// Reset restarts the sequence.
	if err := Reset(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if id, err := postForID(u); err != nil || id != 1 {
		t.Errorf("first id after Reset = %d, %v; want 1", id, err)
	}
}

func TestAdvisoryLockBaseline(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	u := serve(t, AdvisoryLockHandler(pool))

	// Without its table the handler fails, with 500, and the load
	// generator counts it.
	res, err := Run(ctx, []Target{{Name: "no table", URL: u}},
		Options{Clients: 2, Duration: 100 * time.Millisecond, Warmup: -1, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := res[0]; r.Requests == 0 || r.Errors != r.Requests || !strings.Contains(r.ErrorSample, "HTTP 500") {
		t.Fatalf("before SetupAdvisory: Requests = %d, Errors = %d, sample %q; want all HTTP 500", r.Requests, r.Errors, r.ErrorSample)
	}

	if err := SetupAdvisory(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := SetupAdvisory(ctx, pool); err != nil {
		t.Fatalf("SetupAdvisory is not idempotent: %v", err)
	}
	if err := Reset(ctx, pool); err != nil {
		t.Fatal(err)
	}

	res, err = Run(ctx, []Target{{Name: "baseline advisory", URL: u}},
		Options{Clients: 32, Duration: time.Second, Warmup: -1, Repeat: 1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := res[0]
	t.Logf("advisory: %d requests, %.0f req/s, p50=%v p99=%v", r.Requests, r.Throughput, r.P50, r.P99)
	if r.Requests == 0 || r.Errors != 0 {
		t.Fatalf("Requests = %d, Errors = %d (%s)", r.Requests, r.Errors, r.ErrorSample)
	}
	checkOrdered(t, r)
	checkGapless(t, pool, r.Requests)

	// The numbers handed out are exactly the next ones.
	ids := takeIDs(t, u, 300, 32)
	checkDistinct(t, ids)
	for _, id := range ids {
		if id <= r.Requests || id > r.Requests+300 {
			t.Errorf("id %d outside %d..%d", id, r.Requests+1, r.Requests+300)
			break
		}
	}
	checkGapless(t, pool, r.Requests+300)

	if err := Reset(ctx, pool); err != nil {
		t.Fatal(err)
	}
	checkGapless(t, pool, 0)
	if id, err := postForID(u); err != nil || id != 1 {
		t.Errorf("first id after Reset = %d, %v; want 1", id, err)
	}
}

// checkGapless asserts the table holds exactly 1..want.
func checkGapless(t *testing.T, pool *pgxpool.Pool, want int64) {
	t.Helper()
	var count int64
	var lo, hi *int64
	err := pool.QueryRow(context.Background(), "SELECT count(*), min(n), max(n) FROM "+GaplessTable).Scan(&count, &lo, &hi)
	if err != nil {
		t.Fatal(err)
	}
	if want == 0 {
		if count != 0 {
			t.Errorf("table holds %d rows, want none", count)
		}
		return
	}
	// n is the primary key, so count = max-min+1 means no duplicate and no
	// gap.
	if count != want || lo == nil || hi == nil || *lo != 1 || *hi != want {
		t.Errorf("table holds count=%d min=%v max=%v, want exactly 1..%d", count, deref(lo), deref(hi), want)
	}
}

func deref(p *int64) any {
	if p == nil {
		return "NULL"
	}
	return *p
}
