package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testkit"
)

// ledgerTests check the books a sequence keeps: leases capped and handed
// back, truthful statuses and counts, dates and references in the ledger,
// overlapping ranges refused, the date window and closed periods,
// cancelled requests given back, two-phase numbers, deadlines.
var ledgerTests = []struct {
	name string
	fn   func(t *testing.T, open func() allot.Store)
}{
	{"LeaseCappedAndHandedBack", testLeaseCappedAndHandedBack},
	{"TailVoidedWhenTakenAfter", testTailVoidedWhenTakenAfter},
	{"CountsFromTheDatabase", testCountsFromTheDatabase},
	{"ParseChecksDateAndCheck", testParseChecksDateAndCheck},
	{"CachedTracksDates", testCachedTracksDates},
	{"OverlapRefused", testOverlapRefused},
	{"References", testReferences},
	{"WindowAndClosedPeriods", testWindowAndClosedPeriods},
	{"NextRemainingAndWarning", testNextRemainingAndWarning},
	{"CancelledRequestsGiveBack", testCancelledRequestsGiveBack},
	{"TwoPhase", testTwoPhase},
	{"AuditReportsPending", testAuditReportsPending},
	{"StoreTimeout", testStoreTimeout},
	{"IdleLeasesBounded", testIdleLeasesBounded},
	{"TakeAcrossLeasesPutBack", testTakeAcrossLeasesPutBack},
	{"EvictedWhileDelivering", testEvictedWhileDelivering},
	{"LeaseBudgetAcrossDates", testLeaseBudgetAcrossDates},
	{"ClosedPeriodCached", testClosedPeriodCached},
	{"CloseWaitsForDelivery", testCloseWaitsForDelivery},
	{"RestoreSkipsAreNotActivity", testRestoreSkipsAreNotActivity},
}

// seqService returns a service on s with cfg (Store set), closed at the end.
func seqService(t *testing.T, s allot.Store, cfg allot.Config) *allot.Service {
	t.Helper()
	cfg.Store = s
	svc, err := allot.New(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	return svc
}

func create(t *testing.T, svc *allot.Service, p allot.SequenceCreateParams) {
	t.Helper()
	if _, err := svc.SequenceCreate(ctx(t), p); err != nil {
		t.Fatalf("create %s: %v", p.Name, err)
	}
}

func next(t *testing.T, svc *allot.Service, p allot.NextParams) *allot.NextResult {
	t.Helper()
	r, err := svc.Next(ctx(t), p)
	if err != nil {
		t.Fatalf("next %s: %v", p.Sequence, err)
	}
	return r
}

func ledgerOf(t *testing.T, s allot.Store, seq string) []allot.LedgerEntry {
	t.Helper()
	e, err := s.SequenceLedger(ctx(t), allot.SequenceLedgerParams{Sequence: seq, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testLeaseCappedAndHandedBack is the licence plates: LP{n:AA9}
// has 6,760 IDs. A roll of 1,000 and 14 single labels, then a graceful
// stop, must leave 5,746 remaining: the unused rest of the lease goes back
// to the counter, and a lease never takes more than 1/32 of what is left.
func testLeaseCappedAndHandedBack(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, err := allot.New(ctx(t), allot.Config{Store: s, Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "lp", Format: "LP{n:AA9}", Start: ptr[int64](0)})
	roll := next(t, svc, allot.NextParams{Sequence: "lp", Count: 1000})
	if roll.First != 0 || roll.Last != 999 {
		t.Fatalf("roll: %d-%d", roll.First, roll.Last)
	}
	for i := int64(0); i < 14; i++ {
		if r := next(t, svc, allot.NextParams{Sequence: "lp"}); r.First != 1000+i {
			t.Fatalf("label %d got %d", i, r.First)
		}
	}
	for _, e := range ledgerOf(t, s, "lp") {
		if e.Kind == allot.LedgerLeased && e.Count > allot.LeaseCap(6759-999) {
			t.Fatalf("lease %d-%d takes %d numbers, more than 1/%d of the %d left", e.First, e.Last, e.Count, allot.LeaseFraction, 6759-999)
		}
	}
	if err := svc.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	b := service(t, s)
	st, err := b.SequenceGet(ctx(t), "lp")
	if err != nil {
		t.Fatal(err)
	}
	if st.Remaining != 5746 || st.Voided != 0 || st.Leased != 0 || st.Issued != 1014 || st.Next != 1014 {
		t.Fatalf("after a graceful stop: remaining %d voided %d leased %d issued %d next %d; want 5746, 0, 0, 1014, 1014",
			st.Remaining, st.Voided, st.Leased, st.Issued, st.Next)
	}
	returned := false
	for _, e := range ledgerOf(t, s, "lp") {
		returned = returned || e.Kind == allot.LedgerReturned
		if e.Kind == allot.LedgerLeased && (e.Last != 1013 || e.Pending) {
			t.Fatalf("the lease after its tail went back: %+v, want last 1013, settled", e)
		}
	}
	if !returned {
		t.Fatal("the ledger does not note the numbers handed back")
	}
	if r := next(t, b, allot.NextParams{Sequence: "lp"}); r.First != 1014 {
		t.Fatalf("after the restart the next label is %d, want 1014 (nothing burnt)", r.First)
	}
	auditOK(t, b)
}

// testTailVoidedWhenTakenAfter: a lease's unused rest can go back to the
// counter only if nothing was taken after it; otherwise it is voided.
func testTailVoidedWhenTakenAfter(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	a, err := allot.New(ctx(t), allot.Config{Store: s, Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b := seqService(t, s, allot.Config{Owner: "b"})
	create(t, a, allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](10)})
	if r := next(t, a, allot.NextParams{Sequence: "c"}); r.First != 1 {
		t.Fatalf("a got %d", r.First)
	}
	if r := next(t, b, allot.NextParams{Sequence: "c"}); r.First != 11 {
		t.Fatalf("b got %d", r.First)
	}
	if err := a.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if st, _ := numberStatus(t, s, "c", "", 5); st != allot.StatusVoided {
		t.Fatalf("a's unused 5, below b's lease, is %s; want voided", st)
	}
	if c, _ := s.SequenceCounterGet(ctx(t), "c", ""); c.Last != 20 || c.Voided != 9 {
		t.Fatalf("counter %+v, want last 20, 9 voided", c)
	}
	if err := b.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.SequenceCounterGet(ctx(t), "c", ""); c.Last != 11 || c.Voided != 9 {
		t.Fatalf("after b stopped: %+v, want last 11 (b's tail handed back)", c)
	}
	auditOK(t, service(t, s))
}

// testCountsFromTheDatabase: every server reports the same figures, and a
// number leased to a server that has not said what it handed out reads as
// leased, not issued.
func testCountsFromTheDatabase(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	a, err := allot.New(ctx(t), allot.Config{Store: s, Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b := seqService(t, s, allot.Config{Owner: "b"})
	create(t, a, allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](100)})
	for i := 0; i < 3; i++ {
		next(t, a, allot.NextParams{Sequence: "c"})
	}
	next(t, b, allot.NextParams{Sequence: "c"})
	sa, _ := a.SequenceGet(ctx(t), "c")
	sb, _ := b.SequenceGet(ctx(t), "c")
	if sa.Next != sb.Next || sa.Issued != sb.Issued || sa.Leased != sb.Leased || sa.Remaining != sb.Remaining {
		t.Fatalf("two servers disagree: a %+v, b %+v", sa, sb)
	}
	if sa.Issued != 0 || sa.Leased != 200 || sa.Next != 201 {
		t.Fatalf("figures: issued %d leased %d next %d; want 0, 200, 201", sa.Issued, sa.Leased, sa.Next)
	}
	p, err := b.SequenceParse(ctx(t), "c", "99")
	if err != nil || p.Status != allot.StatusLeased {
		t.Fatalf("99, in a's lease, not handed out: %+v %v; want leased", p, err)
	}
	if err := a.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	sb, _ = b.SequenceGet(ctx(t), "c")
	if sb.Issued != 3 || sb.Leased != 100 {
		t.Fatalf("after a stopped: issued %d leased %d; want 3 (a said what it handed out) and b's 100", sb.Issued, sb.Leased)
	}
	if p, _ := b.SequenceParse(ctx(t), "c", "2"); p.Status != allot.StatusIssued {
		t.Fatalf("2, handed out by a, which stopped: %+v", p)
	}
	// b leased after a, so a's unused rest could not go back to the
	// counter: it is voided, with the reason.
	if p, _ := b.SequenceParse(ctx(t), "c", "99"); p.Status != allot.StatusVoided || !strings.Contains(p.Detail, "unused rest of a lease") {
		t.Fatalf("99, not handed out by a: %+v", p)
	}
}

// testParseChecksDateAndCheck: parse checks everything it renders: the
// date part against the date the number was issued with, and a wrong check
// character still shows the number.
func testParseChecksDateAndCheck(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	create(t, svc, allot.SequenceCreateParams{Name: "nr", Format: "INV-{yyyy}-{n}", Mode: allot.ModeGapless})
	if r := next(t, svc, allot.NextParams{Sequence: "nr", Date: "2025-01-01"}); r.IDs[0] != "INV-2025-1" {
		t.Fatalf("got %v", r.IDs)
	}
	p, err := svc.SequenceParse(ctx(t), "nr", "INV-1999-1")
	if err != nil || p.Status != allot.StatusUnissued || p.IssuedAs != "INV-2025-1" || p.Number != 1 {
		t.Fatalf("INV-1999-1, number 1 issued as INV-2025-1: %+v %v", p, err)
	}
	if p, _ := svc.SequenceParse(ctx(t), "nr", "INV-2025-1"); p.Status != allot.StatusIssued {
		t.Fatalf("INV-2025-1: %+v", p)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "lpc", Format: "LPAA{n:4}{check:mod37}", Start: ptr[int64](0), Mode: allot.ModeGapless})
	r := next(t, svc, allot.NextParams{Sequence: "lpc", Count: 5})
	good := r.IDs[4]
	bad := good[:len(good)-1] + "X"
	if bad == good {
		bad = good[:len(good)-1] + "Y"
	}
	p, err = svc.SequenceParse(ctx(t), "lpc", bad)
	if err != nil || p.Valid || p.Number != 4 || p.Status != allot.StatusUnissued {
		t.Fatalf("%s with a wrong check character: %+v %v; want number 4, not valid, unissued", bad, p, err)
	}
}

// testCachedTracksDates: a cached sequence whose format shows a date the
// period does not fix leases per document date, so the ledger knows the
// date of every number.
func testCachedTracksDates(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	create(t, svc, allot.SequenceCreateParams{Name: "d", Format: "D{yyyy}{mm}{dd}-{n}", BlockSize: ptr[int64](10)})
	a := next(t, svc, allot.NextParams{Sequence: "d", Date: "2026-01-01"})
	b := next(t, svc, allot.NextParams{Sequence: "d", Date: "2026-01-02"})
	if a.IDs[0] != "D20260101-1" || b.IDs[0] != "D20260102-11" {
		t.Fatalf("got %v and %v; want D20260101-1 and D20260102-11 (a lease per date)", a.IDs, b.IDs)
	}
	dates := map[string]bool{}
	for _, e := range ledgerOf(t, s, "d") {
		if e.Kind == allot.LedgerLeased {
			dates[e.Date] = true
		}
	}
	if !dates["2026-01-01"] || !dates["2026-01-02"] {
		t.Fatalf("lease dates in the ledger: %v", dates)
	}
	p, err := svc.SequenceParse(ctx(t), "d", "D20260102-1")
	if err != nil || p.Status != allot.StatusUnissued || p.IssuedAs != "D20260101-1" {
		t.Fatalf("D20260102-1: %+v %v", p, err)
	}
}

// testOverlapRefused: two sequences that can render the same ID are
// refused unless asked for, also when two creates race.
func testOverlapRefused(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	create(t, svc, allot.SequenceCreateParams{Name: "pa", Start: ptr[int64](202043200000000), Max: ptr[int64](202043210000000), Mode: allot.ModeGapless})
	create(t, svc, allot.SequenceCreateParams{Name: "pc", Start: ptr[int64](202043210000001), Max: ptr[int64](202043220000000), Mode: allot.ModeGapless})
	_, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: "pb", Start: ptr[int64](202043205000000), Max: ptr[int64](202043215000000)})
	var oe *allot.OverlapError
	if !errors.As(err, &oe) || oe.Other != "pa" || !strings.Contains(err.Error(), `"pa"`) {
		t.Fatalf("overlapping range: %v; want an *OverlapError naming pa", err)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "pb", Start: ptr[int64](202043205000000), Max: ptr[int64](202043215000000), AllowOverlap: true})
	if _, err := svc.SequencePatch(ctx(t), "pa", allot.SequencePatchParams{Max: ptr[int64](202043210000005)}); !errors.As(err, &oe) || oe.Other != "pb" && oe.Other != "pc" {
		t.Fatalf("raising pa's max into pc's range: %v", err)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "other", Format: "X{n}"})
	// Racing creates of one format: exactly one wins.
	var got tally
	race(8, func(i int) {
		_, err := svc.SequenceCreate(ctx(t), allot.SequenceCreateParams{Name: fmt.Sprintf("r%d", i), Format: "R{n}"})
		got.add(t, fmt.Sprintf("create r%d", i), err, allot.ErrOverlap)
	})
	if got.ok != 1 || got.refused != 7 {
		t.Fatalf("8 racing creates of R{n}: %d created, %d refused; want 1 and 7", got.ok, got.refused)
	}
}

// testReferences: a reference is kept with exactly its numbers.
func testReferences(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	create(t, svc, allot.SequenceCreateParams{Name: "inv", Mode: allot.ModeGapless})
	create(t, svc, allot.SequenceCreateParams{Name: "c", Format: "C{n}"})
	got := make([]*allot.NextResult, 20)
	race(len(got), func(i int) {
		p := allot.NextParams{Sequence: "inv", Count: int64(1 + i%3)}
		if i%2 == 0 {
			p.Reference = fmt.Sprintf("order-%d", i)
		}
		got[i] = next(t, svc, p)
	})
	refs := map[string]allot.LedgerEntry{}
	for _, e := range ledgerOf(t, s, "inv") {
		if e.Reference != "" {
			refs[e.Reference] = e
		}
	}
	for i, r := range got {
		if i%2 != 0 {
			continue
		}
		e, ok := refs[fmt.Sprintf("order-%d", i)]
		if !ok || e.First != r.First || e.Last != r.Last || r.Reference != fmt.Sprintf("order-%d", i) {
			t.Fatalf("request %d got %d-%d; its ledger entry is %+v", i, r.First, r.Last, e)
		}
		if p, _ := svc.SequenceParse(ctx(t), "inv", fmt.Sprint(r.Last)); p.Reference != e.Reference {
			t.Fatalf("parse %d: %+v, want reference %s", r.Last, p, e.Reference)
		}
	}
	// A cached sequence writes a request with a reference to the database.
	r := next(t, svc, allot.NextParams{Sequence: "c", Reference: "pallet-7"})
	if p, _ := svc.SequenceParse(ctx(t), "c", r.IDs[0]); p.Status != allot.StatusIssued || p.Reference != "pallet-7" {
		t.Fatalf("cached with a reference: %+v", p)
	}
	if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: "inv", Reference: "a\tb"}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("a reference with a TAB: %v", err)
	}
}

// testWindowAndClosedPeriods: dates far from today are refused for a
// resetting sequence, and a closed period takes no new numbers.
func testWindowAndClosedPeriods(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	clk := testkit.NewClock(time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC))
	svc := seqService(t, s, allot.Config{Now: clk.Now, Owner: "a"})
	create(t, svc, allot.SequenceCreateParams{Name: "inv", Format: "INV-{yyyy}-{n:5}", Reset: allot.ResetYearly, Mode: allot.ModeGapless})
	next(t, svc, allot.NextParams{Sequence: "inv", Date: "2025-12-31"})
	for _, d := range []string{"2024-06-01", "2027-01-01"} {
		_, err := svc.Next(ctx(t), allot.NextParams{Sequence: "inv", Date: d})
		var ie *allot.InvalidError
		if !errors.As(err, &ie) || ie.Field != "date" {
			t.Fatalf("date %s outside the window: %v", d, err)
		}
	}
	if _, err := svc.SequencePatch(ctx(t), "inv", allot.SequencePatchParams{PeriodsAhead: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	next(t, svc, allot.NextParams{Sequence: "inv", Date: "2027-01-01"})

	st, err := svc.SequencePeriodClose(ctx(t), "inv", "2025", false)
	if err != nil || st.Closed == nil || st.Period != "2025" || st.Issued != 1 {
		t.Fatalf("close 2025: %+v %v", st, err)
	}
	if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: "inv", Date: "2025-12-31"}); !errors.Is(err, allot.ErrPeriodClosed) {
		t.Fatalf("next in closed 2025: %v", err)
	}
	if st, _ := svc.SequenceGetAt(ctx(t), "inv", "2025-06-01"); st.Closed == nil || st.Period != "2025" {
		t.Fatalf("get --date in 2025: %+v", st)
	}
	if _, err := svc.SequencePeriodClose(ctx(t), "inv", "2025", true); err != nil {
		t.Fatal(err)
	}
	if r := next(t, svc, allot.NextParams{Sequence: "inv", Date: "2025-12-31"}); r.IDs[0] != "INV-2025-00002" {
		t.Fatalf("after reopening: %v", r.IDs)
	}
	if _, err := svc.SequencePeriodClose(ctx(t), "inv", "25", false); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("a period that is not a year: %v", err)
	}
	// A running server's lease in the period stops a close; this server
	// gives its own back first.
	create(t, svc, allot.SequenceCreateParams{Name: "c", Format: "C-{yyyy}-{n}", Reset: allot.ResetYearly})
	b := seqService(t, s, allot.Config{Now: clk.Now, Owner: "b"})
	next(t, svc, allot.NextParams{Sequence: "c"})
	next(t, b, allot.NextParams{Sequence: "c"})
	if _, err := svc.SequencePeriodClose(ctx(t), "c", "2026", false); !errors.Is(err, allot.ErrInvalidState) || !strings.Contains(err.Error(), "(b)") {
		t.Fatalf("close while b holds a lease: %v", err)
	}
	if err := b.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SequencePeriodClose(ctx(t), "c", "2026", false); err != nil {
		t.Fatalf("close once only this server's lease is left: %v", err)
	}
	if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: "c"}); !errors.Is(err, allot.ErrPeriodClosed) {
		t.Fatalf("cached next in a closed period: %v", err)
	}
	auditOK(t, svc)
}

// testNextRemainingAndWarning: next says how much is left.
func testNextRemainingAndWarning(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	create(t, svc, allot.SequenceCreateParams{Name: "g", Max: ptr[int64](10), WarnAt: ptr(0.5), Mode: allot.ModeGapless})
	if r := next(t, svc, allot.NextParams{Sequence: "g", Count: 4}); r.Remaining != 6 || r.Warning {
		t.Fatalf("after 4 of 10: remaining %d warning %v", r.Remaining, r.Warning)
	}
	if r := next(t, svc, allot.NextParams{Sequence: "g"}); r.Remaining != 5 || !r.Warning {
		t.Fatalf("after 5 of 10: remaining %d warning %v", r.Remaining, r.Warning)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "c", Format: "C{n}", Max: ptr[int64](3200), BlockSize: ptr[int64](10)})
	if r := next(t, svc, allot.NextParams{Sequence: "c"}); r.Remaining != 3190 || r.Warning {
		t.Fatalf("cached, as of the lease: remaining %d warning %v", r.Remaining, r.Warning)
	}
}

// testCancelledRequestsGiveBack is the lost gapless number: a
// second session holds the counter lock, the caller gives up, the commit
// goes through later. No number may end up issued to nobody: it is handed
// back (the next caller gets it) or voided with the reason.
func testCancelledRequestsGiveBack(t *testing.T, open func() allot.Store) {
	if hooks.HoldCounter == nil {
		t.Skip("store gives no way to hold its counter lock")
	}
	s := store(t, open)
	svc := service(t, s)
	create(t, svc, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	next(t, svc, allot.NextParams{Sequence: "g"})
	release := hooks.HoldCounter(t, s, "g", "")
	c, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
	_, err := svc.Next(c, allot.NextParams{Sequence: "g"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next while the counter is locked: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cnt, err := s.SequenceCounterGet(ctx(t), "g", "")
		if err != nil {
			t.Fatal(err)
		}
		if cnt.Last == 1 {
			break // the cancelled request's number went back
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter %+v: the cancelled request's number was not given back", cnt)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := next(t, svc, allot.NextParams{Sequence: "g"}); r.First != 2 {
		t.Fatalf("the next caller got %d, want 2: a cancelled request must not burn a gapless number", r.First)
	}

	// Two servers race while the lock is held; one caller gives up. Every
	// number is then delivered to a caller that got it, or voided with the
	// reason (if the number could not go back), or back at the counter.
	b := service(t, s)
	release = hooks.HoldCounter(t, s, "g", "")
	c, cancel = context.WithTimeout(ctx(t), 300*time.Millisecond)
	gone := make(chan error, 1)
	go func() {
		_, err := svc.Next(c, allot.NextParams{Sequence: "g"})
		gone <- err
	}()
	kept := make(chan *allot.NextResult, 1)
	go func() {
		r, err := b.Next(ctx(t), allot.NextParams{Sequence: "g"})
		if err != nil {
			t.Error(err)
		}
		kept <- r
	}()
	if err := <-gone; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller that gave up: %v", err)
	}
	cancel()
	release()
	r := <-kept
	time.Sleep(300 * time.Millisecond)
	cnt, _ := s.SequenceCounterGet(ctx(t), "g", "")
	for n := int64(3); n <= cnt.Last; n++ {
		if n == r.First {
			continue
		}
		info, err := allot.LookUpNumber(ctx(t), s, "g", "", n)
		if err != nil {
			t.Fatal(err)
		}
		if info.Voided == nil || info.Voided.Reason != allot.ReasonCancelled {
			t.Fatalf("number %d is neither delivered nor voided for the cancelled request: %+v", n, info)
		}
	}
	auditOK(t, svc)
}

// testTwoPhase: reserved numbers are confirmed by their caller or voided
// with a reason when their deadline passes.
func testTwoPhase(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	clk := testkit.NewClock(time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC))
	svc := seqService(t, s, allot.Config{Now: clk.Now})
	create(t, svc, allot.SequenceCreateParams{Name: "inv", Mode: allot.ModeGapless})
	r := next(t, svc, allot.NextParams{Sequence: "inv", Count: 2, ConfirmWithin: 30 * time.Second})
	if r.Status != allot.StatusReserved || r.ConfirmBy == nil || !r.ConfirmBy.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("two-phase next: %+v", r)
	}
	if p, _ := svc.SequenceParse(ctx(t), "inv", "1"); p.Status != allot.StatusReserved || p.ConfirmBy == nil {
		t.Fatalf("parse of a reserved number: %+v", p)
	}
	if st, _ := svc.SequenceGet(ctx(t), "inv"); st.Reserved != 2 || st.Issued != 0 {
		t.Fatalf("figures with 2 reserved: %+v", st)
	}
	e, replayed, err := svc.SequenceConfirm(ctx(t), allot.ConfirmParams{Sequence: "inv", First: 1, Last: 2, Reference: "doc-1"})
	if err != nil || replayed || e.Kind != allot.LedgerConfirmed || e.Reference != "doc-1" {
		t.Fatalf("confirm: %+v %v %v", e, replayed, err)
	}
	if _, replayed, err := svc.SequenceConfirm(ctx(t), allot.ConfirmParams{Sequence: "inv", First: 1, Last: 2, Reference: "doc-1"}); err != nil || !replayed {
		t.Fatalf("confirm retried: %v %v", replayed, err)
	}
	if _, _, err := svc.SequenceConfirm(ctx(t), allot.ConfirmParams{Sequence: "inv", First: 1, Last: 2, Reference: "doc-2"}); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("confirm with another reference: %v", err)
	}
	if p, _ := svc.SequenceParse(ctx(t), "inv", "2"); p.Status != allot.StatusIssued || p.Reference != "doc-1" {
		t.Fatalf("parse of a confirmed number: %+v", p)
	}
	// The sequence's own setting, and a reservation that runs out.
	if _, err := svc.SequencePatch(ctx(t), "inv", allot.SequencePatchParams{ConfirmWithin: dur(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	r = next(t, svc, allot.NextParams{Sequence: "inv"})
	if r.First != 3 || r.Status != allot.StatusReserved {
		t.Fatalf("with confirm_within on the sequence: %+v", r)
	}
	clk.Add(11 * time.Second)
	if _, _, err := svc.SequenceConfirm(ctx(t), allot.ConfirmParams{Sequence: "inv", First: 3, Last: 3}); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("confirm past the deadline: %v", err)
	}
	if n, err := svc.ExpireReservedNow(ctx(t)); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	p, _ := svc.SequenceParse(ctx(t), "inv", "3")
	if p.Status != allot.StatusVoided || !strings.Contains(p.Detail, "not confirmed by 2026-03-15T12:00:10Z") {
		t.Fatalf("an unconfirmed reservation after its deadline: %+v", p)
	}
	if st, _ := svc.SequenceGet(ctx(t), "inv"); st.Reserved != 0 || st.Issued != 2 || st.Voided != 1 {
		t.Fatalf("figures at the end: %+v", st)
	}
	// A keyed retry of a two-phase request shows the same deadline.
	k1 := next(t, svc, allot.NextParams{Sequence: "inv", IdempotencyKey: "k"})
	k2 := next(t, svc, allot.NextParams{Sequence: "inv", IdempotencyKey: "k"})
	if !k2.Replayed || k2.ConfirmBy == nil || !k2.ConfirmBy.Equal(*k1.ConfirmBy) || k2.Status != allot.StatusReserved {
		t.Fatalf("replay of a reserved request: %+v, first %+v", k2, k1)
	}
	auditOK(t, svc)
}

// testAuditReportsPending: the audit reports gapless numbers committed and
// never confirmed answered, and reservations left past their deadline.
func testAuditReportsPending(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := service(t, s)
	create(t, svc, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	// As if a server committed numbers 1-3 and died before answering.
	if _, err := s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: "g", Kind: allot.LedgerIssued, Owner: "ghost", Pending: true,
		Requests: []allot.SequenceAdvanceRequest{{Count: 3}}}); err != nil {
		t.Fatal(err)
	}
	failing := func(now time.Time) []string {
		checks, err := s.Audit(ctx(t), now)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range checks {
			if !c.OK {
				out = append(out, c.Name+": "+c.Detail)
			}
		}
		return out
	}
	if f := failing(time.Now()); len(f) != 0 {
		t.Fatalf("a fresh commit is not yet suspect: %v", f)
	}
	later := time.Now().Add(2 * time.Minute)
	if f := failing(later); len(f) != 1 || !strings.Contains(f[0], "answered") || !strings.Contains(f[0], "first=1, last=3") {
		t.Fatalf("unanswered gapless numbers: %v", f)
	}
	// An operator resolves them: 2 has a document, 1 and 3 do not.
	if _, _, err := svc.SequenceConfirm(ctx(t), allot.ConfirmParams{Sequence: "g", First: 2, Last: 2, Reference: "found"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{1, 3} {
		if _, err := svc.SequenceVoid(ctx(t), allot.VoidParams{Sequence: "g", Number: ptr(n), Reason: "never reached the customer"}); err != nil {
			t.Fatal(err)
		}
	}
	if f := failing(later); len(f) != 0 {
		t.Fatalf("after confirming and voiding them: %v", f)
	}
	// A reservation past its deadline while servers run.
	past := time.Now().Add(-time.Minute)
	if _, err := s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: "g", Kind: allot.LedgerIssued, Owner: "ghost",
		Requests: []allot.SequenceAdvanceRequest{{Count: 1, ConfirmBy: &past}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ServerSeen(ctx(t), svc.Owner()); err != nil {
		t.Fatal(err)
	}
	if f := failing(time.Now()); len(f) != 1 || !strings.Contains(f[0], "deadline") {
		t.Fatalf("a reservation past its deadline: %v", f)
	}
	if _, err := svc.ExpireReservedNow(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if f := failing(time.Now()); len(f) != 0 {
		t.Fatalf("after the sweep: %v", f)
	}
}

// testStoreTimeout: a frozen database answers with ErrUnavailable within
// the store timeout, and takes nothing.
func testStoreTimeout(t *testing.T, open func() allot.Store) {
	if hooks.HoldCounter == nil {
		t.Skip("store gives no way to hold its counter lock")
	}
	s := store(t, open)
	svc := seqService(t, s, allot.Config{StoreTimeout: 300 * time.Millisecond})
	create(t, svc, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	next(t, svc, allot.NextParams{Sequence: "g"})
	release := hooks.HoldCounter(t, s, "g", "")
	start := time.Now()
	_, err := svc.Next(ctx(t), allot.NextParams{Sequence: "g"})
	took := time.Since(start)
	release()
	if !errors.Is(err, allot.ErrUnavailable) {
		t.Fatalf("next while the counter is locked: %v; want ErrUnavailable", err)
	}
	if took > 3*time.Second {
		t.Fatalf("the answer took %s; the store timeout is 300ms", took)
	}
	time.Sleep(1500 * time.Millisecond) // the resolver looks the batch up
	if r := next(t, svc, allot.NextParams{Sequence: "g"}); r.First != 2 {
		t.Fatalf("after the timeout the next number is %d, want 2", r.First)
	}
	auditOK(t, svc)
}

// testIdleLeasesBounded: idle leases are given back, and one sequence
// keeps at most LeasesMax leases per process, so a daily sequence fed many
// dates neither grows without bound nor burns numbers.
func testIdleLeasesBounded(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, err := allot.New(ctx(t), allot.Config{Store: s, LeaseIdle: time.Second, LeasesMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "d", Format: "L{yyyy}{mm}{dd}-{n}", Reset: allot.ResetDaily, BlockSize: ptr[int64](10),
		PeriodsBack: ptr(allot.PeriodsMax)})
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 40; i++ {
		next(t, svc, allot.NextParams{Sequence: "d", Date: day.AddDate(0, 0, i).Format(time.DateOnly)})
	}
	pending := func() int {
		n := 0
		for _, e := range ledgerOf(t, s, "d") {
			if e.Kind == allot.LedgerLeased && e.Pending {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for pending() > 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d leases pending with LeasesMax 3", pending())
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d leases still pending after sitting idle", pending())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 40; i++ {
		p := day.AddDate(0, 0, i).Format(time.DateOnly)
		c, err := s.SequenceCounterGet(ctx(t), "d", p)
		if err != nil || c.Last != 1 || c.Voided != 0 {
			t.Fatalf("period %s: %+v %v; want last 1 (the rest handed back), nothing voided", p, c, err)
		}
	}
	start := time.Now()
	if err := svc.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("close took %s", d)
	}
	auditOK(t, service(t, s))
}

var errClientGone = errors.New("client gone")

// testTakeAcrossLeasesPutBack: two adjacent leases form one run in
// memory, so a request can take numbers of both; if its answer is not
// delivered they go back to memory, the next caller gets them, and a
// graceful stop leaves nothing issued that nobody got.
func testTakeAcrossLeasesPutBack(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, err := allot.New(ctx(t), allot.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](100)})
	for i := 0; i < 60; i++ {
		next(t, svc, allot.NextParams{Sequence: "c"})
	}
	// Less than half a lease left: the next one is fetched ahead.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := s.SequenceCounterGet(ctx(t), "c", "")
		if err != nil {
			t.Fatal(err)
		}
		if c.Last >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter %+v: the second lease never came", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = svc.Next(ctx(t), allot.NextParams{Sequence: "c", Count: 60, Deliver: func(r *allot.NextResult) error {
		if r.First != 61 || r.Last != 120 {
			t.Errorf("took %d-%d, want 61-120 (across the two leases)", r.First, r.Last)
		}
		return errClientGone
	}})
	if !errors.Is(err, errClientGone) {
		t.Fatalf("undelivered next: %v", err)
	}
	if r := next(t, svc, allot.NextParams{Sequence: "c"}); r.First != 61 {
		t.Fatalf("the next caller got %d, want 61: undelivered numbers go back to memory", r.First)
	}
	if err := svc.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	b := service(t, s)
	st, err := b.SequenceGet(ctx(t), "c")
	if err != nil {
		t.Fatal(err)
	}
	if st.Issued != 61 || st.Leased != 0 || st.Voided != 0 || st.Next != 62 {
		t.Fatalf("after a graceful stop: issued %d leased %d voided %d next %d; want 61, 0, 0, 62", st.Issued, st.Leased, st.Voided, st.Next)
	}
	auditOK(t, b)
}

// testEvictedWhileDelivering: a lease pushed out (LeasesMax) while one of
// its requests is still being answered gives back its unused rest at
// once; the request's numbers, not delivered, go back too, and the lease
// is settled with them rather than left pending.
func testEvictedWhileDelivering(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := seqService(t, s, allot.Config{LeasesMax: 1})
	create(t, svc, allot.SequenceCreateParams{Name: "d", Format: "D{yyyy}{mm}{dd}-{n}", Reset: allot.ResetDaily, BlockSize: ptr[int64](100),
		PeriodsBack: ptr(allot.PeriodsMax)})
	d1, d2 := "2026-01-01", "2026-01-02"
	next(t, svc, allot.NextParams{Sequence: "d", Date: d1})
	_, err := svc.Next(ctx(t), allot.NextParams{Sequence: "d", Date: d1, Deliver: func(r *allot.NextResult) error {
		if r.First != 2 {
			t.Errorf("took %d, want 2", r.First)
		}
		next(t, svc, allot.NextParams{Sequence: "d", Date: d2}) // pushes d1's lease out
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := s.SequenceCounterGet(ctx(t), "d", d1)
			if err != nil {
				t.Error(err)
				return err
			}
			if c.Last == 2 {
				break // the unused rest 3-100 went back; 2 is out for delivery
			}
			if time.Now().After(deadline) {
				t.Errorf("d1's counter %+v: its lease was not given back", c)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return errClientGone
	}})
	if !errors.Is(err, errClientGone) {
		t.Fatalf("undelivered next: %v", err)
	}
	if err := svc.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	st, err := svc.SequenceGetAt(ctx(t), "d", d1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Issued != 1 || st.Leased != 0 || st.Voided != 0 || st.Next != 2 {
		t.Fatalf("%s while running: issued %d leased %d voided %d next %d; want 1, 0, 0, 2 (number 2 handed back, the lease settled)",
			d1, st.Issued, st.Leased, st.Voided, st.Next)
	}
	for _, e := range ledgerOf(t, s, "d") {
		if e.Period == d1 && e.Pending {
			t.Fatalf("entry still pending: %+v", e)
		}
	}
}

// testLeaseBudgetAcrossDates: a format that shows the date without a
// reset leases per document date, all in one period; the leases one server
// holds there stay within twice the cap of what the period has left, so a
// crash can't burn a small range however many dates come in.
func testLeaseBudgetAcrossDates(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc := seqService(t, s, allot.Config{})
	create(t, svc, allot.SequenceCreateParams{Name: "d", Format: "D{yyyy}{mm}{dd}-{n}", Max: ptr[int64](3200), BlockSize: ptr[int64](100)})
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[int64]bool{}
	for i := 0; i < 20; i++ {
		r := next(t, svc, allot.NextParams{Sequence: "d", Date: day.AddDate(0, 0, i).Format(time.DateOnly)})
		if seen[r.First] {
			t.Fatalf("number %d issued twice", r.First)
		}
		seen[r.First] = true
	}
	c, err := s.SequenceCounterGet(ctx(t), "d", "")
	if err != nil {
		t.Fatal(err)
	}
	if limit := 2 * allot.LeaseCap(3200); c.Leased > limit {
		t.Fatalf("%d numbers leased to one server over 20 dates, more than twice the cap (%d)", c.Leased, limit)
	}
	if err := svc.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	b := service(t, s)
	st, err := b.SequenceGet(ctx(t), "d")
	if err != nil {
		t.Fatal(err)
	}
	if st.Issued != 20 || st.Leased != 0 {
		t.Fatalf("after a graceful stop: issued %d leased %d; want 20 and 0", st.Issued, st.Leased)
	}
	auditOK(t, b)
}

// testClosedPeriodCached: requests for a closed period of a cached
// sequence are refused with period_closed, without a store call and a
// log line per request.
func testClosedPeriodCached(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	var logs testkit.Buffer
	svc := seqService(t, s, allot.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	create(t, svc, allot.SequenceCreateParams{Name: "d", Format: "D{yyyy}{mm}{dd}-{n}", Reset: allot.ResetDaily, PeriodsBack: ptr(allot.PeriodsMax)})
	if _, err := svc.SequencePeriodClose(ctx(t), "d", "2026-01-01", false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := svc.Next(ctx(t), allot.NextParams{Sequence: "d", Date: "2026-01-01"}); !errors.Is(err, allot.ErrPeriodClosed) {
			t.Fatalf("next in a closed period: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n > 0 {
		t.Fatalf("%d WARN lines for 20 requests refused for a closed period:\n%s", n, logs.String())
	}
	if _, err := svc.SequencePeriodClose(ctx(t), "d", "2026-01-01", true); err != nil {
		t.Fatal(err)
	}
	if r := next(t, svc, allot.NextParams{Sequence: "d", Date: "2026-01-01"}); r.First != 1 {
		t.Fatalf("after reopening: %d, want 1", r.First)
	}
}

// testCloseWaitsForDelivery: a graceful stop while an answer from memory
// is still being delivered waits for it; the number, not delivered, goes
// back to the counter, and nothing is left pending or counted as issued.
func testCloseWaitsForDelivery(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	slow := &slowGiveBack{Store: s, gate: make(chan struct{})}
	svc, err := allot.New(ctx(t), allot.Config{Store: slow})
	if err != nil {
		t.Fatal(err)
	}
	create(t, svc, allot.SequenceCreateParams{Name: "c", BlockSize: ptr[int64](10)})
	next(t, svc, allot.NextParams{Sequence: "c"})
	started, release := make(chan struct{}), make(chan struct{})
	gone := make(chan error, 1)
	go func() {
		_, err := svc.Next(ctx(t), allot.NextParams{Sequence: "c", Deliver: func(r *allot.NextResult) error {
			close(started)
			<-release
			return errClientGone
		}})
		gone <- err
	}()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- svc.Close(ctx(t)) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned while an answer was out for delivery: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	// The answer failed; its number is being given back, slowly: Close
	// must wait for that too, or it records a clean stop (which counts
	// the number as issued) before the give-back lands.
	select {
	case err := <-closed:
		t.Fatalf("Close returned while the undelivered number was still being given back: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(slow.gate)
	if err := <-gone; !errors.Is(err, errClientGone) {
		t.Fatalf("the undelivered next: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	b := service(t, s)
	st, err := b.SequenceGet(ctx(t), "c")
	if err != nil {
		t.Fatal(err)
	}
	if st.Issued != 1 || st.Leased != 0 || st.Voided != 0 || st.Next != 2 {
		t.Fatalf("after the stop: issued %d leased %d voided %d next %d; want 1, 0, 0, 2", st.Issued, st.Leased, st.Voided, st.Next)
	}
	for _, e := range ledgerOf(t, s, "c") {
		if e.Pending {
			t.Fatalf("entry still pending: %+v", e)
		}
	}
	auditOK(t, b)
}

// slowGiveBack holds the give-back of undelivered numbers until gate is
// closed.
type slowGiveBack struct {
	allot.Store
	gate chan struct{}
}

func (s *slowGiveBack) SequenceLedgerTx(ctx context.Context, what string, fn func(allot.LedgerTx) error) error {
	if strings.Contains(what, "("+allot.ReasonCancelled+")") {
		<-s.gate
	}
	return s.Store.SequenceLedgerTx(ctx, what, fn)
}

// testRestoreSkipsAreNotActivity: the numbers a restore skips don't count
// as the database's activity, so a restore run again after one that
// stopped part-way dates the backup, and rates its sequences, by what the
// backup held.
func testRestoreSkipsAreNotActivity(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	as, ok := s.(allot.AdminStore)
	if !ok {
		t.Skip("not an AdminStore")
	}
	svc := seqService(t, s, allot.Config{})
	create(t, svc, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	next(t, svc, allot.NextParams{Sequence: "g", Count: 5})
	before, err := as.LastActivity(ctx(t))
	if err != nil || before.IsZero() {
		t.Fatalf("last activity: %v %v", before, err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := as.SequenceSkip(ctx(t), allot.SequenceSkipParams{Sequence: "g", Count: 100, Reason: allot.RestoreReason, Owner: allot.RestoreOwner}); err != nil {
		t.Fatal(err)
	}
	after, err := as.LastActivity(ctx(t))
	if err != nil || !after.Equal(before) {
		t.Fatalf("last activity after a restore's skip: %v (was %v) %v", after, before, err)
	}
	n, err := as.SequenceActivity(ctx(t), "g", before.Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || n != 5 {
		t.Fatalf("activity: %d %v, want the 5 numbers issued (not the 100 skipped)", n, err)
	}
}
