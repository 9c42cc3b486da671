// Package storetest is the conformance suite every allot.Store passes. It
// runs against real databases only, and checks each guarantee from the
// store's own answers: no number twice, never past max, gapless means
// gapless, idempotency keys commit with their numbers.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/allot/allot"
)

// Opener opens a store for one test. Each call to open must return a store
// on the SAME database (so reopening simulates a restart); different tests
// get different databases. The suite migrates and closes the stores.
type Opener func(t *testing.T) (open func() allot.Store)

// Hooks reach into a store's database for tests that need another session.
type Hooks struct {
	// HoldCounter makes another database session hold the write lock of
	// a period's counter row (on SQLite: the database's write lock) until
	// release is called, like a slow transaction would.
	HoldCounter func(t *testing.T, s allot.Store, seq, period string) (release func())
}

var hooks Hooks

// Run runs the suite.
func Run(t *testing.T, opener Opener, h Hooks) {
	hooks = h
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() allot.Store)
	}{
		{"MigrateTwiceAndRestart", testMigrateRestart},
		{"SequenceCRUD", testSequenceCRUD},
		{"AdvanceInOrder", testAdvanceInOrder},
		{"AdvanceExhaustion", testAdvanceExhaustion},
		{"AdvanceAtInt64Max", testAdvanceInt64Max},
		{"Idempotency", testIdempotency},
		{"UpdateMax", testUpdateMax},
		{"Void", testVoid},
		{"LedgerPaging", testLedgerPaging},
		{"Purge", testPurge},
		{"GaplessConcurrent", testGaplessConcurrent},
		{"CachedConcurrentAndClose", testCachedConcurrentAndClose},
		{"ResetPeriods", testResetPeriods},
		{"ServiceIdempotentNext", testServiceIdempotentNext},
		{"ServiceStateAndWarning", testServiceState},
		{"ServiceParseAndVoid", testServiceParseAndVoid},
		{"VoidAcrossServers", testVoidAcrossServers},
		{"TurnRollsBack", testTurnRollsBack},
	}
	tests = append(tests, ledgerTests...)
	tests = append(tests, labelTests...)
	tests = append(tests, poolTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			open := opener(t)
			tc.fn(t, open)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// store opens, migrates and registers Close.
func store(t *testing.T, open func() allot.Store) allot.Store {
	t.Helper()
	s := open()
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustSeq(t *testing.T, s allot.Store, p allot.SequenceCreateParams) *allot.Sequence {
	t.Helper()
	q, err := allot.NewSequence(p)
	if err != nil {
		t.Fatalf("NewSequence: %v", err)
	}
	out, err := s.SequenceCreate(ctx(t), q)
	if err != nil {
		t.Fatalf("SequenceCreate: %v", err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func advance(t *testing.T, s allot.Store, seq, period string, counts ...int64) []allot.SequenceAdvanceResult {
	t.Helper()
	reqs := make([]allot.SequenceAdvanceRequest, len(counts))
	for i, c := range counts {
		reqs[i].Count = c
	}
	res, err := s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: seq, Period: period, Kind: allot.LedgerIssued, Owner: "test", Requests: reqs})
	if err != nil {
		t.Fatalf("SequenceAdvance: %v", err)
	}
	if len(res) != len(counts) {
		t.Fatalf("got %d results for %d requests", len(res), len(counts))
	}
	return res
}

func service(t *testing.T, s allot.Store) *allot.Service {
	t.Helper()
	svc, err := allot.New(ctx(t), allot.Config{Store: s})
	if err != nil {
		t.Fatalf("allot.New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	return svc
}

func testMigrateRestart(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a", Mode: allot.ModeGapless})
	advance(t, s, "a", "", 5)
	s.Close()

	s2 := store(t, open) // a restart against the existing database
	r := advance(t, s2, "a", "", 1)
	if r[0].Err != nil || r[0].First != 6 {
		t.Fatalf("after restart got %+v, want first=6", r[0])
	}
}

func testSequenceCRUD(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	a := mustSeq(t, s, allot.SequenceCreateParams{Name: "lp", Format: "LP{n:AA9}", Start: ptr[int64](0)})
	if a.Max != 6759 || a.Mode != allot.ModeCached || a.BlockSize != 1000 || a.Timezone != "UTC" || a.WarnAt != 0.9 {
		t.Fatalf("defaults not stored: %+v", a)
	}
	if a.CreatedAt.IsZero() {
		t.Fatal("created_at not set")
	}
	mustSeq(t, s, allot.SequenceCreateParams{Name: "inv", Format: "INV-{yyyy}-{n:5}", Reset: allot.ResetYearly, Mode: allot.ModeGapless})
	q, _ := allot.NewSequence(allot.SequenceCreateParams{Name: "lp"})
	if _, err := s.SequenceCreate(ctx(t), q); !errors.Is(err, allot.ErrAlreadyExists) {
		t.Fatalf("duplicate create: got %v, want ErrAlreadyExists", err)
	}
	got, err := s.SequenceGet(ctx(t), "inv")
	if err != nil || got.Format != "INV-{yyyy}-{n:5}" || got.Reset != allot.ResetYearly || got.Mode != allot.ModeGapless {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.SequenceGet(ctx(t), "nope"); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("get unknown: got %v, want ErrNotFound", err)
	}
	list, err := s.SequenceList(ctx(t))
	if err != nil || len(list) != 2 || list[0].Name != "inv" || list[1].Name != "lp" {
		t.Fatalf("list: %v %v", list, err)
	}
	c, err := s.SequenceCounterGet(ctx(t), "lp", "")
	if err != nil || c.Last != -1 || c.Voided != 0 {
		t.Fatalf("fresh counter: %+v %v", c, err)
	}
	if _, err := s.SequenceCounterGet(ctx(t), "nope", ""); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("counter of unknown: got %v", err)
	}
}

func testAdvanceInOrder(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a", Start: ptr[int64](100)})
	res := advance(t, s, "a", "", 1, 10, 3)
	want := [][2]int64{{100, 100}, {101, 110}, {111, 113}}
	for i, r := range res {
		if r.Err != nil || r.First != want[i][0] || r.Last != want[i][1] {
			t.Fatalf("request %d: got %+v, want %v", i, r, want[i])
		}
	}
	c, _ := s.SequenceCounterGet(ctx(t), "a", "")
	if c.Last != 113 {
		t.Fatalf("counter last = %d, want 113", c.Last)
	}
	entries, err := s.SequenceLedger(ctx(t), allot.SequenceLedgerParams{Sequence: "a", Limit: 10})
	if err != nil || len(entries) != 1 || entries[0].First != 100 || entries[0].Last != 113 || entries[0].Kind != allot.LedgerIssued {
		t.Fatalf("ledger after one batch: %+v %v", entries, err)
	}
	if _, err := s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: "nope", Kind: allot.LedgerIssued,
		Requests: []allot.SequenceAdvanceRequest{{Count: 1}}}); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("advance unknown: got %v, want ErrNotFound", err)
	}
}

func testAdvanceExhaustion(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a", Start: ptr[int64](1), Max: ptr[int64](10), Mode: allot.ModeGapless})
	res := advance(t, s, "a", "", 4, 7, 5, 2)
	if res[0].Err != nil || res[0].First != 1 || res[0].Last != 4 {
		t.Fatalf("first request: %+v", res[0])
	}
	var ex *allot.ExhaustedError
	if !errors.As(res[1].Err, &ex) || ex.Remaining != 6 || ex.Requested != 7 {
		t.Fatalf("second request: got %v, want exhausted with 6 remaining", res[1].Err)
	}
	if res[2].Err != nil || res[2].First != 5 || res[2].Last != 9 {
		t.Fatalf("third request should take 5-9: %+v", res[2])
	}
	if !errors.As(res[3].Err, &ex) || ex.Remaining != 1 {
		t.Fatalf("fourth request: got %v, want exhausted with 1 remaining", res[3].Err)
	}
	res = advance(t, s, "a", "", 1, 1)
	if res[0].Err != nil || res[0].First != 10 || !errors.Is(res[1].Err, allot.ErrExhausted) {
		t.Fatalf("tail: %+v", res)
	}
	c, _ := s.SequenceCounterGet(ctx(t), "a", "")
	if c.Last != 10 {
		t.Fatalf("counter went to %d, want exactly max 10", c.Last)
	}
}

func testAdvanceInt64Max(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "edge", Start: ptr[int64](math.MaxInt64 - 2)})
	res := advance(t, s, "edge", "", 2, 1, 1)
	if res[0].Err != nil || res[0].Last != math.MaxInt64-1 || res[1].Err != nil || res[1].First != math.MaxInt64 {
		t.Fatalf("edge: %+v", res)
	}
	var ex *allot.ExhaustedError
	if !errors.As(res[2].Err, &ex) || ex.Remaining != 0 {
		t.Fatalf("past 2^63-1 must be exhausted, got %+v", res[2])
	}
	// A fresh sequence over the whole int64 range reports remaining
	// saturated, not wrapped.
	mustSeq(t, s, allot.SequenceCreateParams{Name: "whole", Start: ptr[int64](0), AllowOverlap: true})
	c, _ := s.SequenceCounterGet(ctx(t), "whole", "")
	if r := allot.Remaining(c.Last, math.MaxInt64); r != math.MaxInt64 {
		t.Fatalf("remaining = %d", r)
	}
}

func testIdempotency(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a", Mode: allot.ModeGapless})
	key := func(k, h string) *allot.IdempotencyParams {
		return &allot.IdempotencyParams{Scope: "sequence:a", Key: k, RequestHash: h, Date: "2026-01-02"}
	}
	p := allot.SequenceAdvanceParams{Sequence: "a", Kind: allot.LedgerIssued, Requests: []allot.SequenceAdvanceRequest{
		{Count: 3, Idempotency: key("k1", "h1")}, {Count: 2}, {Count: 1, Idempotency: key("k2", "h2")},
	}}
	res, err := s.SequenceAdvance(ctx(t), p)
	if err != nil || res[0].First != 1 || res[1].First != 4 || res[2].First != 6 {
		t.Fatalf("first batch: %+v %v", res, err)
	}
	rec, err := s.IdempotencyGet(ctx(t), "sequence:a", "k1")
	if err != nil || rec.First != 1 || rec.Last != 3 || rec.RequestHash != "h1" || rec.Date != "2026-01-02" {
		t.Fatalf("stored key: %+v %v", rec, err)
	}
	// Same keys again: replayed, nothing new taken; a new key still works.
	res, err = s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: "a", Kind: allot.LedgerIssued, Requests: []allot.SequenceAdvanceRequest{
		{Count: 3, Idempotency: key("k1", "h1")}, {Count: 1, Idempotency: key("k2", "other")}, {Count: 1, Idempotency: key("k3", "h3")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Replayed == nil || res[0].Replayed.First != 1 {
		t.Fatalf("replay: %+v", res[0])
	}
	if !errors.Is(res[1].Err, allot.ErrIdempotencyMismatch) {
		t.Fatalf("mismatch: %+v", res[1])
	}
	if res[2].Err != nil || res[2].First != 7 {
		t.Fatalf("new key after replays must take 7: %+v", res[2])
	}
	if _, err := s.IdempotencyGet(ctx(t), "sequence:a", "missing"); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	// A key whose request did not fit is not stored, so a retry after
	// max is raised can succeed.
	mustSeq(t, s, allot.SequenceCreateParams{Name: "tiny", Max: ptr[int64](1), Mode: allot.ModeGapless, AllowOverlap: true})
	res, _ = s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: "tiny", Kind: allot.LedgerIssued, Requests: []allot.SequenceAdvanceRequest{
		{Count: 5, Idempotency: &allot.IdempotencyParams{Scope: "sequence:tiny", Key: "big", RequestHash: "h"}}}})
	if !errors.Is(res[0].Err, allot.ErrExhausted) {
		t.Fatalf("want exhausted: %+v", res[0])
	}
	if _, err := s.IdempotencyGet(ctx(t), "sequence:tiny", "big"); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("a failed request's key must not be stored: %v", err)
	}
}

func testUpdateMax(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a", Max: ptr[int64](10)})
	advance(t, s, "a", "", 5)
	if _, err := s.SequenceUpdate(ctx(t), allot.SequenceUpdateParams{Name: "a", Max: ptr[int64](4)}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("max below issued: got %v, want ErrInvalid", err)
	}
	q, _ := s.SequenceGet(ctx(t), "a")
	if q.Max != 10 {
		t.Fatalf("rejected update changed max to %d", q.Max)
	}
	q, err := s.SequenceUpdate(ctx(t), allot.SequenceUpdateParams{Name: "a", Max: ptr[int64](20), WarnAt: ptr(0.5)})
	if err != nil || q.Max != 20 || q.WarnAt != 0.5 {
		t.Fatalf("raise: %+v %v", q, err)
	}
	if q, err = s.SequenceUpdate(ctx(t), allot.SequenceUpdateParams{Name: "a", Max: ptr[int64](5)}); err != nil || q.Max != 5 {
		t.Fatalf("lower to exactly the highest taken: %+v %v", q, err)
	}
	if r := advance(t, s, "a", "", 1); !errors.Is(r[0].Err, allot.ErrExhausted) {
		t.Fatalf("after lowering max to 5: %+v", r[0])
	}
	if _, err := s.SequenceUpdate(ctx(t), allot.SequenceUpdateParams{Name: "zz", Max: ptr[int64](5)}); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
}

func testVoid(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a", Mode: allot.ModeGapless})
	void := func(first, last int64) (*allot.LedgerEntry, error) {
		return allot.VoidRange(ctx(t), s, allot.SequenceVoidParams{Sequence: "a", First: first, Last: last, Reason: "printer jam", Owner: "test"})
	}
	if _, err := void(1, 1); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("void before any issue: %v", err)
	}
	advance(t, s, "a", "", 5)
	if _, err := void(6, 6); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("void of unissued 6: %v", err)
	}
	e, err := void(3, 3)
	if err != nil || e.Kind != allot.LedgerVoided || e.Reason != "printer jam" || e.First != 3 || e.Count != 1 {
		t.Fatalf("void 3: %+v %v", e, err)
	}
	if _, err := void(3, 3); !errors.Is(err, allot.ErrAlreadyExists) {
		t.Fatalf("void twice: %v", err)
	}
	if _, err := void(2, 4); !errors.Is(err, allot.ErrAlreadyExists) {
		t.Fatalf("overlapping void: %v", err)
	}
	for n, want := range map[int64]allot.NumberStatus{2: allot.StatusIssued, 3: allot.StatusVoided, 6: allot.StatusUnissued, 0: allot.StatusUnissued} {
		st, err := numberStatus(t, s, "a", "", n)
		if err != nil || st != want {
			t.Fatalf("status of %d: %v %v, want %v", n, st, err, want)
		}
	}
	c, _ := s.SequenceCounterGet(ctx(t), "a", "")
	if c.Voided != 1 || c.Last != 5 {
		t.Fatalf("counter after void: %+v", c)
	}
}

func testLedgerPaging(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a"})
	for i := 0; i < 7; i++ {
		advance(t, s, "a", "", 2)
	}
	var all []allot.LedgerEntry
	var after int64
	for {
		page, err := s.SequenceLedger(ctx(t), allot.SequenceLedgerParams{Sequence: "a", AfterID: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != 7 {
		t.Fatalf("paged %d entries, want 7", len(all))
	}
	for i, e := range all {
		if e.First != int64(2*i+1) || e.Last != int64(2*i+2) || e.Sequence != "a" {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
}

func testPurge(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	mustSeq(t, s, allot.SequenceCreateParams{Name: "a"})
	_, err := s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: "a", Kind: allot.LedgerIssued, Requests: []allot.SequenceAdvanceRequest{
		{Count: 1, Idempotency: &allot.IdempotencyParams{Scope: "sequence:a", Key: "k", RequestHash: "h"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.IdempotencyPurge(ctx(t), time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge of nothing old: %d %v", n, err)
	}
	if n, err := s.IdempotencyPurge(ctx(t), time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
}

// testGaplessConcurrent checks, through the Service and its group commit,
// that concurrent callers get every number from start exactly once.
func testGaplessConcurrent(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 25
	got := make(chan int64, workers*each*3)
	errs := make(chan error, workers)
	race(workers, func(w int) {
		for i := 0; i < each; i++ {
			count := int64(1 + (w+i)%3)
			r, err := svc.Next(ctx(t), allot.NextParams{Sequence: "g", Count: count})
			if err != nil {
				errs <- err
				return
			}
			for n := r.First; n <= r.Last; n++ {
				got <- n
			}
		}
	})
	close(got)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var nums []int64
	for n := range got {
		nums = append(nums, n)
	}
	assertGapless(t, nums, 1)
	c, _ := s.SequenceCounterGet(ctx(t), "g", "")
	if c.Last != int64(len(nums)) {
		t.Fatalf("counter %d, issued %d", c.Last, len(nums))
	}
}

func assertGapless(t *testing.T, nums []int64, start int64) {
	t.Helper()
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for i, n := range nums {
		if n != start+int64(i) {
			t.Fatalf("position %d holds %d, want %d (duplicate or gap)", i, n, start+int64(i))
		}
	}
}

// testCachedConcurrentAndClose checks cached mode: distinct numbers, and on
// Close the unused rest of every lease is voided so the ledger explains
// every number taken.
func testCachedConcurrentAndClose(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, err := allot.New(ctx(t), allot.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](50)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := make(map[int64]bool)
	race(8, func(w int) {
		for i := 0; i < 60; i++ {
			r, err := svc.Next(ctx(t), allot.NextParams{Sequence: "c", Count: int64(1 + i%7)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for n := r.First; n <= r.Last; n++ {
				if seen[n] {
					t.Errorf("number %d issued twice", n)
				}
				seen[n] = true
			}
			mu.Unlock()
		}
	})
	if err := svc.Close(ctx(t)); err != nil {
		t.Fatalf("close: %v", err)
	}
	// Every number up to the counter is either issued or voided by the
	// shutdown, and every issued number lies in a leased range.
	c, _ := s.SequenceCounterGet(ctx(t), "c", "")
	entries, err := s.SequenceLedger(ctx(t), allot.SequenceLedgerParams{Sequence: "c", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	covered := make(map[int64]string)
	for _, e := range entries {
		for n := e.First; n <= e.Last; n++ {
			if e.Kind == allot.LedgerVoided {
				if seen[n] {
					t.Fatalf("number %d was issued and then voided at shutdown", n)
				}
				covered[n] = "voided"
			} else if covered[n] == "" {
				covered[n] = string(e.Kind)
			} else if covered[n] != "voided" {
				t.Fatalf("number %d taken twice in the ledger", n)
			}
		}
	}
	for n := int64(1); n <= c.Last; n++ {
		if !seen[n] && covered[n] != "voided" {
			t.Fatalf("number %d is an unexplained gap", n)
		}
		if seen[n] && covered[n] == "" {
			t.Fatalf("issued number %d is in no ledger entry", n)
		}
	}
	if c.Voided != c.Last-int64(len(seen)) {
		t.Fatalf("voided %d, want %d", c.Voided, c.Last-int64(len(seen)))
	}
}

func testResetPeriods(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	for _, mode := range []allot.Mode{allot.ModeGapless, allot.ModeCached} {
		name := "inv-" + string(mode)
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: name, Format: "INV-{yyyy}-{n:5}", Reset: allot.ResetYearly, Mode: mode,
			PeriodsBack: ptr(allot.PeriodsMax), PeriodsAhead: ptr(allot.PeriodsMax), AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		next := func(date string) *allot.NextResult {
			r, err := svc.Next(ctx(t), allot.NextParams{Sequence: name, Date: date})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		for _, tc := range []struct{ date, id, period string }{
			{"2026-03-01", "INV-2026-00001", "2026"},
			{"2026-12-31", "INV-2026-00002", "2026"},
			{"2027-01-01", "INV-2027-00001", "2027"},
			{"2026-06-01", "INV-2026-00003", "2026"},
		} {
			if r := next(tc.date); r.IDs[0] != tc.id || r.Period != tc.period {
				t.Fatalf("%s %s: got %v period %q, want %s", mode, tc.date, r.IDs, r.Period, tc.id)
			}
		}
	}
}

func testServiceIdempotentNext(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	for _, mode := range []allot.Mode{allot.ModeGapless, allot.ModeCached} {
		name := "i-" + string(mode)
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: name, Format: "X{n:4}", Mode: mode, AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		a, err := svc.Next(ctx(t), allot.NextParams{Sequence: name, Count: 3, IdempotencyKey: "order-1"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := svc.Next(ctx(t), allot.NextParams{Sequence: name, Count: 3, IdempotencyKey: "order-1"})
		if err != nil || !b.Replayed || b.First != a.First || fmt.Sprint(b.IDs) != fmt.Sprint(a.IDs) {
			t.Fatalf("%s replay: %+v %v, first %+v", mode, b, err, a)
		}
		if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: name, Count: 4, IdempotencyKey: "order-1"}); !errors.Is(err, allot.ErrIdempotencyMismatch) {
			t.Fatalf("%s mismatch: %v", mode, err)
		}
		c, err := svc.Next(ctx(t), allot.NextParams{Sequence: name})
		if err != nil || c.First <= a.Last {
			t.Fatalf("%s: a keyless request after the keyed one got %+v %v", mode, c, err)
		}
	}
}

func testServiceState(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	st, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: "w", Max: ptr[int64](10), WarnAt: ptr(0.5), Mode: allot.ModeGapless})
	if err != nil || st.Next != 1 || st.Remaining != 10 || st.Issued != 0 || st.Warning {
		t.Fatalf("fresh state: %+v %v", st, err)
	}
	if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: "w", Count: 5}); err != nil {
		t.Fatal(err)
	}
	st, _ = svc.SequenceGet(ctx(t), "w")
	if st.Next != 6 || st.Remaining != 5 || st.Issued != 5 || !st.Warning {
		t.Fatalf("state at 50%%: %+v", st)
	}
	_, err = svc.Next(ctx(t), allot.NextParams{Sequence: "w", Count: 6})
	var ex *allot.ExhaustedError
	if !errors.As(err, &ex) || ex.Remaining != 5 {
		t.Fatalf("want exhausted with 5 remaining: %v", err)
	}
	st, err = svc.SequencePatch(ctx(t), "w", allot.SequencePatchParams{Max: ptr[int64](100), WarnAt: ptr(0.9)})
	if err != nil || st.Max != 100 || st.Remaining != 95 || st.Warning {
		t.Fatalf("after patch: %+v %v", st, err)
	}
	if _, err := svc.SequencePatch(ctx(t), "w", allot.SequencePatchParams{Max: ptr[int64](3)}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("patch below issued: %v", err)
	}
	// Cached: the figures count what this process still holds as unissued.
	if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](100), AllowOverlap: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: "c", Count: 3}); err != nil {
		t.Fatal(err)
	}
	// The figures come from the database alone: the lease this process
	// took (one block of 100) is leased, not issued, until it says what
	// it handed out, so every server reports the same.
	st, _ = svc.SequenceGet(ctx(t), "c")
	if st.Next != 101 || st.Issued != 0 || st.Leased != 100 || st.Remaining != math.MaxInt64-100 {
		t.Fatalf("cached state: %+v", st)
	}
}

func testServiceParseAndVoid(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	for _, mode := range []allot.Mode{allot.ModeGapless, allot.ModeCached} {
		name := "p-" + string(mode)
		if _, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: name, Format: "LP{n:AA9}{check:mod37}", Start: ptr[int64](0), Mode: mode, BlockSize: ptr[int64](10), AllowOverlap: true}); err != nil {
			t.Fatal(err)
		}
		r, err := svc.Next(ctx(t), allot.NextParams{Sequence: name, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		// A cached number handed out from a lease reads as leased until
		// the server says what it handed out (it is still running).
		want := allot.StatusIssued
		if mode == allot.ModeCached {
			want = allot.StatusLeased
		}
		p, err := svc.SequenceParse(ctx(t), name, r.IDs[1])
		if err != nil || !p.Valid || p.Number != 1 || p.Status != want {
			t.Fatalf("%s parse %s: %+v %v", mode, r.IDs[1], p, err)
		}
		// An ID of a number not issued yet (in cached mode it may sit
		// unissued in this process's block).
		future, _ := svc.Next(ctx(t), allot.NextParams{Sequence: name, Count: 1})
		_ = future
		if _, err := svc.SequenceVoid(ctx(t), allot.VoidParams{Sequence: name, ID: r.IDs[1], Reason: "damaged label"}); err != nil {
			t.Fatalf("%s void: %v", mode, err)
		}
		p, _ = svc.SequenceParse(ctx(t), name, r.IDs[1])
		if p.Status != allot.StatusVoided {
			t.Fatalf("%s after void: %+v", mode, p)
		}
		if _, err := svc.SequenceVoid(ctx(t), allot.VoidParams{Sequence: name, Number: ptr[int64](8), Reason: "x"}); !errors.Is(err, allot.ErrInvalid) {
			t.Fatalf("%s void of unissued 8: %v", mode, err)
		}
		p, err = svc.SequenceParse(ctx(t), name, "LPAA8"+"0")
		if err != nil || p.Status == allot.StatusIssued {
			t.Fatalf("%s parse of unissued/invalid: %+v %v", mode, p, err)
		}
		if _, err := svc.SequenceParse(ctx(t), name, "garbage"); !errors.Is(err, allot.ErrInvalid) {
			t.Fatalf("%s parse garbage: %v", mode, err)
		}
	}
}

// testVoidAcrossServers: a server may not void a cached number another
// server leased and may not have handed out yet, until that server has
// stopped (or with Force, for a server that crashed).
func testVoidAcrossServers(t *testing.T, open func() allot.Store) {
	st := store(t, open)
	a, err := allot.New(ctx(t), allot.Config{Store: st, Owner: "server-a"})
	if err != nil {
		t.Fatal(err)
	}
	b := service(t, st)
	if _, err := a.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](10)}); err != nil {
		t.Fatal(err)
	}
	if r, err := a.Next(ctx(t), allot.NextParams{Sequence: "c", Count: 2}); err != nil || r.First != 1 {
		t.Fatalf("next on a: %+v %v", r, err)
	}
	void := func(svc *allot.Service, n int64, force bool) error {
		_, err := svc.SequenceVoid(ctx(t), allot.VoidParams{Sequence: "c", Number: &n, Reason: "test", Force: force})
		return err
	}
	if err := void(b, 5, false); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("b voiding 5, leased to a and not handed out: %v", err)
	}
	if err := void(a, 5, false); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("a voiding its own unissued 5: %v", err)
	}
	if err := void(b, 5, true); err != nil {
		t.Fatalf("forced void: %v", err)
	}
	if err := a.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// a stopped: the unused tail above the forced void (6-10) went back
	// to the counter, the unused numbers below it (3-4) were voided, and
	// the rest is issued.
	if err := void(b, 1, false); err != nil {
		t.Fatalf("voiding 1, issued by a stopped server: %v", err)
	}
	if err := void(b, 3, false); !errors.Is(err, allot.ErrAlreadyExists) {
		t.Fatalf("3 was voided when a stopped: %v", err)
	}
	if err := void(b, 7, false); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("7 was handed back when a stopped, so it is not issued: %v", err)
	}
	if c, err := st.SequenceCounterGet(ctx(t), "c", ""); err != nil || c.Last != 5 || c.Leased != 0 {
		t.Fatalf("counter after a stopped: %+v %v; want last 5 (6-10 handed back), nothing leased", c, err)
	}
	if r, err := b.Next(ctx(t), allot.NextParams{Sequence: "c"}); err != nil || r.First != 6 {
		t.Fatalf("the next lease starts where a's was handed back: %+v %v", r, err)
	}
}

// GuardLedger checks, through exec (a raw statement on the store's
// database), that the schema itself protects the ledger of sequence "a",
// which holds one issued row 1..5 under a counter at 5 (max 10): the
// counter can't move back over numbers the ledger holds, ledger rows can't
// be deleted or rewritten, and the one legal way back, giving back a
// row's tail and then the counter, works.
func GuardLedger(t *testing.T, exec func(q string) error) {
	t.Helper()
	refused := []struct{ what, q string }{
		{"counter moved back over issued numbers", `UPDATE allot_sequence_counters SET last = 4`},
		{"ledger row deleted", `DELETE FROM allot_sequence_ledger`},
		{"ledger row moved", `UPDATE allot_sequence_ledger SET first = 2`},
		{"ledger row grown", `UPDATE allot_sequence_ledger SET last = 6`},
		{"ledger row relabelled", `UPDATE allot_sequence_ledger SET kind = 'voided'`},
		{"ledger row renamed", `UPDATE allot_sequence_ledger SET sequence = 'b'`},
	}
	for _, r := range refused {
		if err := exec(r.q); err == nil {
			t.Fatalf("the schema allowed it: %s", r.what)
		}
	}
	// Giving back numbers 5: the row gives back its tail, then the counter.
	if err := exec(`UPDATE allot_sequence_ledger SET last = 4`); err != nil {
		t.Fatalf("shrinking a row's tail: %v", err)
	}
	if err := exec(`UPDATE allot_sequence_counters SET last = 4`); err != nil {
		t.Fatalf("moving the counter back over a given-back number: %v", err)
	}
	if err := exec(`UPDATE allot_sequence_counters SET last = 3`); err == nil {
		t.Fatal("counter moved back over issued number 4")
	}
}

// numberStatus is what the store's ledger says of number n.
func numberStatus(t *testing.T, s allot.Store, seq, period string, n int64) (allot.NumberStatus, error) {
	t.Helper()
	info, err := allot.LookUpNumber(ctx(t), s, seq, period, n)
	if err != nil {
		return "", err
	}
	st, _ := allot.NumberStatusOf(*info, "")
	return st, nil
}

// race runs fn(0) .. fn(n-1) at once, each on its own goroutine, and
// waits for them all.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// tally counts the outcomes of racing calls: those that succeeded and
// those refused with the expected error. Any other error fails the test.
type tally struct {
	mu          sync.Mutex
	ok, refused int
}

func (c *tally) add(t *testing.T, what string, err, refusal error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.ok++
	case errors.Is(err, refusal):
		c.refused++
	default:
		t.Errorf("%s: %v", what, err)
	}
}
