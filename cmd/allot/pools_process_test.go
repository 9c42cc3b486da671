package main

// Pool guarantees proven by brute force against real server processes and
// real databases, checked afterwards from the database itself.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/sqlite"
)

func createPool(t *testing.T, base string, p allot.PoolCreateParams) {
	t.Helper()
	var st allot.PoolState
	if code, _, err := call("POST", base+"/v1/pools", p, nil, &st); err != nil || code != 201 {
		t.Fatalf("create pool %s: %d %v", p.Name, code, err)
	}
}

// claimHTTP claims qty units; it returns the claim, the HTTP status, and an
// error only when there was no answer.
func claimHTTP(base, pool, customer string, qty int64) (*allot.Claim, int, error) {
	var c allot.Claim
	code, _, err := call("POST", base+"/v1/pools/"+pool+"/claims", map[string]any{"customer": customer, "quantity": qty}, nil, &c)
	if code == 0 {
		return nil, 0, err
	}
	if code == 201 || code == 200 {
		return &c, code, err
	}
	return nil, code, nil
}

func auditStore(t *testing.T, st allot.Store) {
	t.Helper()
	checks, err := st.Audit(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !c.OK {
			t.Fatalf("audit %q: %s", c.Name, c.Detail)
		}
	}
}

// TestPoolExactlyNThreeProcesses sends 10,000 concurrent claims across 3
// server processes at a pool of 1,000: exactly 1,000 are held.
func TestPoolExactlyNThreeProcesses(t *testing.T) {
	url := testdb.Postgres(t)
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, startServer(t, url))
	}
	createPool(t, procs[0].url, allot.PoolCreateParams{Name: "concert", Capacity: ptr[int64](1000), PerCustomer: ptr[int64](1)})
	createPool(t, procs[0].url, allot.PoolCreateParams{Name: "limited", Capacity: ptr[int64](1000), PerCustomer: ptr[int64](3)})
	const claims, workers = 10000, 96
	var held, soldOut, other atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= claims {
					return
				}
				_, code, err := claimHTTP(procs[i%3].url, "concert", fmt.Sprintf("fan-%d", i), 1)
				switch {
				case err == nil && code == 201:
					held.Add(1)
				case code == 409:
					soldOut.Add(1)
				default:
					other.Add(1)
				}
			}
		}(w)
	}
	// Meanwhile one customer races from 50 goroutines across the three
	// processes for a pool with a limit of 3.
	var greedy atomic.Int64
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			if c, code, _ := claimHTTP(procs[g%3].url, "limited", "greedy", 1); code == 201 {
				greedy.Add(c.Quantity)
			}
		}(g)
	}
	wg.Wait()
	if held.Load() != 1000 || soldOut.Load() != claims-1000 || other.Load() != 0 {
		t.Fatalf("held %d, sold out %d, other %d; want exactly 1000, %d, 0", held.Load(), soldOut.Load(), other.Load(), claims-1000)
	}
	if greedy.Load() != 3 {
		t.Fatalf("one customer racing from 50 goroutines got %d units; the limit is 3", greedy.Load())
	}
	st := openStoreT(t, url)
	ps, err := st.PoolGet(context.Background(), "concert", time.Now())
	if err != nil || ps.Held != 1000 || ps.Available != 0 {
		t.Fatalf("database says %+v %v", ps, err)
	}
	auditStore(t, st)
}

// TestSoldOutReopensAcrossProcesses: a sold-out pool rejects from memory
// on every process; a release on another process reopens it within 1 s.
func TestSoldOutReopensAcrossProcesses(t *testing.T) {
	url := testdb.Postgres(t)
	a, b := startServer(t, url), startServer(t, url)
	createPool(t, a.url, allot.PoolCreateParams{Name: "last-seat", Capacity: ptr[int64](1), PerCustomer: ptr[int64](0)})
	c, code, err := claimHTTP(a.url, "last-seat", "first", 1)
	if err != nil || code != 201 {
		t.Fatalf("first claim: %d %v", code, err)
	}
	// B learns the pool is sold out, and keeps rejecting.
	for i := 0; i < 20; i++ {
		if _, code, _ := claimHTTP(b.url, "last-seat", fmt.Sprintf("late-%d", i), 1); code != 409 {
			t.Fatalf("claim on a sold-out pool: %d", code)
		}
	}
	if code, _, err := call("POST", a.url+"/v1/claims/"+c.ID+"/release", map[string]any{}, nil, nil); err != nil || code != 200 {
		t.Fatalf("release: %d %v", code, err)
	}
	released := time.Now()
	for {
		_, code, err := claimHTTP(b.url, "last-seat", "second", 1)
		if err != nil {
			t.Fatal(err)
		}
		if code == 201 {
			break
		}
		if time.Since(released) > time.Second {
			t.Fatalf("pool still sold out on the other process %s after the release", time.Since(released))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("reopened on the other process %s after the release", time.Since(released))
}

// TestSweeperBoundRealClock: with the real clock, an expired hold's units
// are back in the database within 2 s of its expiry.
func TestSweeperBoundRealClock(t *testing.T) {
	bothStores(t, func(t *testing.T, _, url string) {
		p := startServer(t, url)
		createPool(t, p.url, allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](5), PerCustomer: ptr[int64](0)})
		var c allot.Claim
		if code, _, err := call("POST", p.url+"/v1/pools/p/claims", map[string]any{"customer": "x", "quantity": 2, "ttl": "1s"}, nil, &c); err != nil || code != 201 {
			t.Fatalf("claim: %d %v", code, err)
		}
		st := openStoreT(t, url)
		for {
			stored, err := st.ClaimGet(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Status == allot.ClaimExpired {
				late := time.Since(c.ExpiresAt)
				if late > allot.SweepBound {
					t.Fatalf("units came back %s after expiry, over the %s bound", late, allot.SweepBound)
				}
				t.Logf("swept %s after expiry", late)
				break
			}
			if time.Since(c.ExpiresAt) > allot.SweepBound+time.Second {
				t.Fatalf("hold still %s %s after expiry", stored.Status, time.Since(c.ExpiresAt))
			}
			time.Sleep(20 * time.Millisecond)
		}
		ps, _ := st.PoolGet(context.Background(), "p", time.Now())
		if ps.Held != 0 || ps.Available != 5 {
			t.Fatalf("after the sweep: %+v", ps)
		}
		auditStore(t, st)
	})
}

// TestKill9DuringFlashSale kills the server in the middle of a flash sale,
// restarts it and finishes: every acknowledged claim and confirm exists in
// the database, nothing is oversold, and every invariant holds.
func TestKill9DuringFlashSale(t *testing.T) {
	url := testdb.Postgres(t)
	addr := freeAddr(t)
	p := startServerAt(t, addr, url)
	const capacity, customers = 300, 3000
	createPool(t, p.url, allot.PoolCreateParams{Name: "sale", Capacity: ptr[int64](capacity), PerCustomer: ptr[int64](1)})
	var mu sync.Mutex
	acked := map[string]allot.ClaimStatus{} // claim id -> status the client was told
	var next atomic.Int64
	var wg sync.WaitGroup
	base := func() string { return "http://" + addr }
	for w := 0; w < 48; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= customers {
					return
				}
				c, code, _ := claimHTTP(base(), "sale", fmt.Sprintf("fan-%d", i), 1)
				if code != 201 {
					if code == 0 {
						time.Sleep(20 * time.Millisecond) // server down: move on
					}
					continue
				}
				mu.Lock()
				acked[c.ID] = allot.ClaimHeld
				mu.Unlock()
				var out allot.Claim
				if code, _, _ := call("POST", base()+"/v1/claims/"+c.ID+"/confirm", map[string]string{"reference": "pay-" + c.ID}, nil, &out); code == 200 {
					mu.Lock()
					acked[c.ID] = allot.ClaimConfirmed
					mu.Unlock()
				}
			}
		}()
	}
	// Kill the server mid-sale: once a third of the units are acknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= capacity/3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sale never got a third of the way")
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	atKill := len(acked)
	mu.Unlock()
	p.kill9()
	startServerAt(t, addr, url)
	wg.Wait()
	if atKill >= capacity {
		t.Fatalf("the kill came after the sale (%d acknowledged)", atKill)
	}

	st := openStoreT(t, url)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no claim was acknowledged: the test proved nothing")
	}
	for id, told := range acked {
		c, err := st.ClaimGet(context.Background(), id)
		if err != nil {
			t.Fatalf("acknowledged claim %s is not in the database: %v", id, err)
		}
		if told == allot.ClaimConfirmed && c.Status != allot.ClaimConfirmed {
			t.Fatalf("claim %s was acknowledged as confirmed but the database says %s", id, c.Status)
		}
	}
	ps, err := st.PoolGet(context.Background(), "sale", time.Now())
	if err != nil || ps.Held+ps.Confirmed > capacity {
		t.Fatalf("oversold: %+v %v", ps, err)
	}
	auditStore(t, st)
	t.Logf("killed at %d acknowledged claims; in all %d acknowledged; pool held %d confirmed %d of %d", atKill, len(acked), ps.Held, ps.Confirmed, capacity)
}

// TestAuditCatchesPlantedViolations runs `allot audit` on a healthy database
// (exit 0), then plants violations behind allot's back and expects it to
// fail naming each broken invariant.
func TestAuditCatchesPlantedViolations(t *testing.T) {
	bothStores(t, func(t *testing.T, kind, url string) {
		p := startServer(t, url)
		createPool(t, p.url, allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](10)})
		createSeq(t, p.url, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
		for i := 0; i < 3; i++ {
			if _, code, err := claimHTTP(p.url, "p", fmt.Sprintf("c%d", i), 1); code != 201 {
				t.Fatalf("claim: %d %v", code, err)
			}
			if code, _, err := call("POST", p.url+"/v1/sequences/g/next", map[string]int{"count": 2}, nil, nil); code != 200 {
				t.Fatalf("next: %d %v", code, err)
			}
		}
		if _, err := p.term(); err != nil {
			t.Fatal(err)
		}
		audit := func() (string, int) {
			cmd := exec.Command(binPath, "audit", "--store", url)
			cmd.Env = os.Environ()
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); ok {
				return string(out), ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return string(out), 0
		}
		if out, code := audit(); code != 0 {
			t.Fatalf("audit of a healthy database failed (%d):\n%s", code, out)
		}
		plant := func(sql string) {
			t.Helper()
			if err := execSQL(url, sql); err != nil {
				t.Fatalf("plant %q: %v", sql, err)
			}
		}
		// A counter that no longer matches the claims (bypassing the
		// triggers), and a sequence range issued twice.
		plant(`UPDATE allot_pools SET held = held - 1 WHERE name = 'p'`)
		plant(`INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, created_at) VALUES ('g', '', 'issued', 2, 3, 'planted', 'test', 0)`)
		out, code := audit()
		if code == 0 {
			t.Fatalf("audit passed a planted violation:\n%s", out)
		}
		for _, want := range []string{"pool counters equal the claims", "no sequence number taken twice"} {
			if !strings.Contains(out, want) || !strings.Contains(out, "FAIL") {
				t.Fatalf("audit output does not report %q:\n%s", want, out)
			}
		}
	})
}

// execSQL runs one statement directly against the database, behind
// allot's back.
func execSQL(url, q string) error {
	ctx := context.Background()
	if strings.HasPrefix(url, "postgres") {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		q = strings.Replace(q, ", 0)", ", now())", 1)
		_, err = conn.Exec(ctx, q)
		return err
	}
	path, err := sqlite.PathFromURL(url)
	if err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.DB().ExecContext(ctx, q)
	return err
}
