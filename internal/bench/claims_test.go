package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/allot/allot/internal/testdb"
)

// testRedis returns a client of the test Redis and a quota name unique to
// this test, so the test's keys (RedisKeyPrefix + name…) are its own; they
// are deleted when the test ends. Without a reachable Redis the test fails
// if CI is set and is skipped otherwise.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(testdb.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	name := uniqueName("t-")
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, RedisKeyPrefix+name+"*", 100).Iterator()
		for iter.Next(ctx) {
			if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("delete Redis key %s: %v", iter.Val(), err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan Redis keys %s*: %v", RedisKeyPrefix+name, err)
		}
	})
	return rdb, name
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// claimOutcomes counts the answers of concurrent claims.
type claimOutcomes struct {
	held, soldOut int
	ids           []string
	other         []string
}

// claimConcurrently sends n claims for distinct customers of quota, all
// goroutines released at once through a gate.
func claimConcurrently(t *testing.T, base, quota string, n int) claimOutcomes {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var (
		out  claimOutcomes
		mu   sync.Mutex
		wg   sync.WaitGroup
		gate = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-gate
			code, body, err := postJSON(client, base+"/v1/pools/"+quota+"/claims", fmt.Sprintf(`{"customer":"customer-%d","quantity":1}`, i))
			var a claimAnswer
			_ = json.Unmarshal(body, &a)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				out.other = append(out.other, err.Error())
			case code == http.StatusCreated && a.held():
				out.held++
				out.ids = append(out.ids, a.ID)
			case code == http.StatusConflict && a.Code == "sold_out":
				out.soldOut++
			default:
				out.other = append(out.other, fmt.Sprintf("HTTP %d: %s", code, body))
			}
		})
	}
	close(gate)
	wg.Wait()
	return out
}

func postJSON(c *http.Client, u, body string) (int, []byte, error) {
	resp, err := c.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// checkExactlyN asserts that of 400 concurrent claims on a quota of 100
// exactly 100 got a unit, 300 were told sold out, and the orders table
// holds exactly the 100 orders answered; then confirms them all.
func checkExactlyN(t *testing.T, pool *pgxpool.Pool, base, quota string) {
	t.Helper()
	ctx := context.Background()
	out := claimConcurrently(t, base, quota, 400)
	if len(out.other) > 0 {
		t.Fatalf("%d claims neither held nor sold out, e.g. %s", len(out.other), out.other[0])
	}
	if out.held != 100 || out.soldOut != 300 {
		t.Fatalf("held %d, sold out %d; want exactly 100 and 300", out.held, out.soldOut)
	}
	seen := map[string]bool{}
	for _, id := range out.ids {
		if seen[id] {
			t.Fatalf("order id %s answered twice", id)
		}
		seen[id] = true
	}
	var rows, units, customers int64
	if err := pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(quantity),0), count(DISTINCT customer) FROM "+OrdersTable+" WHERE status = 'held'").Scan(&rows, &units, &customers); err != nil {
		t.Fatal(err)
	}
	if rows != 100 || units != 100 || customers != 100 {
		t.Fatalf("orders table: %d rows, %d units, %d customers; want 100 of each", rows, units, customers)
	}
	for _, id := range out.ids {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+OrdersTable+" WHERE id = $1", id).Scan(&n); err != nil || n != 1 {
			t.Fatalf("answered order %s is not in the table (%d rows, %v)", id, n, err)
		}
	}

	// Every holder confirms.
	for _, id := range out.ids {
		code, body, err := postJSON(http.DefaultClient, base+"/v1/claims/"+id+"/confirm", `{"reference":"pay-1"}`)
		if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"confirmed"`) {
			t.Fatalf("confirm %s: HTTP %d %s %v", id, code, body, err)
		}
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+OrdersTable+" WHERE status = 'confirmed'").Scan(&rows); err != nil || rows != 100 {
		t.Fatalf("%d confirmed orders (%v), want 100", rows, err)
	}
	if code, body, _ := postJSON(http.DefaultClient, base+"/v1/claims/ord_nope/confirm", `{}`); code != http.StatusNotFound || !strings.Contains(string(body), `"not_found"`) {
		t.Errorf("confirm of an unknown order: HTTP %d %s, want 404 not_found", code, body)
	}
}

// checkBadRequests asserts the handler's answers to malformed claims and
// unknown routes.
func checkBadRequests(t *testing.T, base, quota string) {
	t.Helper()
	for _, body := range []string{`{`, `{"quantity":1}`, `{"customer":"c","quantity":-1}`} {
		code, b, err := postJSON(http.DefaultClient, base+"/v1/pools/"+quota+"/claims", body)
		if err != nil || code != http.StatusBadRequest || !strings.Contains(string(b), `"invalid_request"`) {
			t.Errorf("claim %s: HTTP %d %s %v; want 400 invalid_request", body, code, b, err)
		}
	}
	if code, _, _ := postJSON(http.DefaultClient, base+"/v1/next", `{}`); code != http.StatusNotFound {
		t.Errorf("unknown route: HTTP %d, want 404", code)
	}
	resp, err := http.Get(base + "/v1/pools/" + quota + "/claims")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET claims: HTTP %d, want 405", resp.StatusCode)
	}
}

func TestNaiveClaimBaseline(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	quota := uniqueName("q-")
	base := serve(t, NaiveClaimHandler(pool))
	if err := ResetClaims(ctx, pool, nil, quota, 100); err != nil {
		t.Fatal(err)
	}
	checkBadRequests(t, base, quota)
	checkExactlyN(t, pool, base, quota)
	var reserved int64
	if err := pool.QueryRow(ctx, "SELECT reserved FROM "+QuotaTable+" WHERE name = $1", quota).Scan(&reserved); err != nil || reserved != 100 {
		t.Errorf("reserved = %d (%v), want 100", reserved, err)
	}

	// A quantity larger than what is left is sold out and takes nothing.
	if err := ResetClaims(ctx, pool, nil, quota, 3); err != nil {
		t.Fatal(err)
	}
	if code, b, _ := postJSON(http.DefaultClient, base+"/v1/pools/"+quota+"/claims", `{"customer":"big","quantity":4}`); code != http.StatusConflict || !strings.Contains(string(b), `"sold_out"`) {
		t.Errorf("claim of 4 of 3: HTTP %d %s, want 409 sold_out", code, b)
	}
	if code, _, _ := postJSON(http.DefaultClient, base+"/v1/pools/"+quota+"/claims", `{"customer":"big","quantity":3}`); code != http.StatusCreated {
		t.Errorf("claim of 3 of 3: HTTP %d, want 201", code)
	}
	// A missing quota row answers sold out too (documented).
	if code, _, _ := postJSON(http.DefaultClient, base+"/v1/pools/nope/claims", `{"customer":"c"}`); code != http.StatusConflict {
		t.Errorf("claim on a missing quota: HTTP %d, want 409", code)
	}
}

func TestRedisLuaClaimBaseline(t *testing.T) {
	pool := testPool(t)
	rdb, quota := testRedis(t)
	ctx := context.Background()
	base := serve(t, RedisLuaClaimHandler(rdb, pool))
	if err := ResetClaims(ctx, pool, rdb, quota, 100); err != nil {
		t.Fatal(err)
	}
	checkBadRequests(t, base, quota)
	checkExactlyN(t, pool, base, quota)
	if left, err := rdb.Get(ctx, RedisQuotaKey(quota)).Int64(); err != nil || left != 0 {
		t.Errorf("Redis counter at %d (%v) after selling out, want 0", left, err)
	}

	// A missing key is not found.
	if code, b, _ := postJSON(http.DefaultClient, base+"/v1/pools/"+quota+"-missing/claims", `{"customer":"c"}`); code != http.StatusNotFound || !strings.Contains(string(b), `"not_found"`) {
		t.Errorf("claim on a missing key: HTTP %d %s, want 404 not_found", code, b)
	}

	// When the order can't be written the units go back to Redis.
	if err := ResetClaims(ctx, pool, rdb, quota, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ALTER TABLE "+OrdersTable+" RENAME TO orders_away"); err != nil {
		t.Fatal(err)
	}
	code, b, _ := postJSON(http.DefaultClient, base+"/v1/pools/"+quota+"/claims", `{"customer":"c","quantity":2}`)
	if _, err := pool.Exec(ctx, "ALTER TABLE orders_away RENAME TO "+OrdersTable); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusInternalServerError {
		t.Errorf("claim with no orders table: HTTP %d %s, want 500", code, b)
	}
	if left, err := rdb.Get(ctx, RedisQuotaKey(quota)).Int64(); err != nil || left != 5 {
		t.Errorf("Redis counter at %d (%v) after a failed insert, want 5 (given back)", left, err)
	}
}

func TestResetClaims(t *testing.T) {
	pool := testPool(t)
	rdb, quota := testRedis(t)
	ctx := context.Background()
	if err := SetupClaims(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := SetupClaims(ctx, pool); err != nil {
		t.Fatalf("SetupClaims is not idempotent: %v", err)
	}
	base := serve(t, NaiveClaimHandler(pool))
	if err := ResetClaims(ctx, pool, rdb, quota, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if code, _, _ := postJSON(http.DefaultClient, base+"/v1/pools/"+quota+"/claims", fmt.Sprintf(`{"customer":"c%d"}`, i)); code != http.StatusCreated {
			t.Fatalf("claim %d: HTTP %d", i, code)
		}
	}
	if err := ResetClaims(ctx, pool, rdb, quota, 7); err != nil {
		t.Fatal(err)
	}
	var q, reserved, orders int64
	if err := pool.QueryRow(ctx, "SELECT quota, reserved, (SELECT count(*) FROM "+OrdersTable+") FROM "+QuotaTable+" WHERE name = $1", quota).Scan(&q, &reserved, &orders); err != nil {
		t.Fatal(err)
	}
	if q != 7 || reserved != 0 || orders != 0 {
		t.Errorf("after ResetClaims: quota %d, reserved %d, %d orders; want 7, 0, 0", q, reserved, orders)
	}
	if left, err := rdb.Get(ctx, RedisQuotaKey(quota)).Int64(); err != nil || left != 7 {
		t.Errorf("Redis counter %d (%v), want 7", left, err)
	}
	if err := ResetClaims(ctx, pool, nil, quota, -1); err == nil {
		t.Error("ResetClaims accepted a negative quota")
	}
}

// Both baselines come out of a flash sale exact, and their tables agree.
func TestFlashSaleBaselines(t *testing.T) {
	pool := testPool(t)
	rdb, quota := testRedis(t)
	ctx := context.Background()
	opts := FlashSaleOptions{Customers: 2000, Capacity: 200, Concurrency: 64}
	for _, d := range []struct {
		name string
		h    http.Handler
	}{{"naive", NaiveClaimHandler(pool)}, {"redis", RedisLuaClaimHandler(rdb, pool)}} {
		t.Run(d.name, func(t *testing.T) {
			if err := ResetClaims(ctx, pool, rdb, quota, int64(opts.Capacity)); err != nil {
				t.Fatal(err)
			}
			base := serve(t, d.h)
			r, err := FlashSale(ctx, FlashSaleTarget{
				Name:       d.name,
				ClaimURL:   base + "/v1/pools/" + quota + "/claims",
				ConfirmURL: func(id string) string { return base + "/v1/claims/" + id + "/confirm" },
			}, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %+v", d.name, r)
			if !r.Exact() || r.Claimed != 200 || r.Confirmed != 200 || r.SoldOut != 1800 {
				t.Fatalf("not exact: %+v", r)
			}
			var confirmed int64
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+OrdersTable+" WHERE status = 'confirmed'").Scan(&confirmed); err != nil || confirmed != 200 {
				t.Errorf("%d confirmed orders (%v), want 200", confirmed, err)
			}
		})
	}
}
