package allot

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot/allot/batch"
	"github.com/allot/allot/format"
)

// settingsTTL is how long a process uses a sequence's mutable settings
// (warn_at, the date window, confirm_within) before reading them again, so
// a change made through another server takes effect here too.
const settingsTTL = 5 * time.Second

// seqRuntime is what a process keeps about one sequence: the immutable
// parts of its configuration, parsed once, its mutable settings (read
// again every settingsTTL) and the cached-mode allocators.
type seqRuntime struct {
	seq  *Sequence // the immutable parts; Max and the settings here may be stale
	tmpl *format.Template
	loc  *time.Location

	// usesDate is false when neither the format nor the reset needs a
	// date, so the hot path need not read the clock. tracksDate is true
	// when the format shows more of the date than the period fixes: the
	// ledger then records the date with the numbers.
	usesDate, tracksDate bool

	settings  atomic.Pointer[seqSettings]
	reloading atomic.Bool

	allocMu sync.Mutex
	allocs  map[allocKey]*allocator
	budgets map[string]*periodBudget // per period: see periodBudget
	// last is the allocator used most recently: almost every request is
	// for the current period, so this skips the map.
	last atomic.Pointer[allocator]
}

// seqSettings are the mutable settings Next needs.
type seqSettings struct {
	warnAt                    float64
	periodsBack, periodsAhead int
	confirmWithin             time.Duration
	loadedAt                  int64 // Service.monoNow when read
}

func (s *Service) settingsOf(seq *Sequence) *seqSettings {
	return &seqSettings{warnAt: seq.WarnAt, periodsBack: seq.PeriodsBack, periodsAhead: seq.PeriodsAhead,
		confirmWithin: time.Duration(seq.ConfirmWithin), loadedAt: s.monoNow()}
}

// current returns the settings, reading them again in the background when
// they are older than settingsTTL.
func (rt *seqRuntime) current(s *Service) *seqSettings {
	st := rt.settings.Load()
	if s.coarseNow()-st.loadedAt > int64(settingsTTL) && rt.reloading.CompareAndSwap(false, true) {
		if !s.goBackground(func() {
			defer rt.reloading.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
			defer cancel()
			seq, err := s.store.SequenceGet(ctx, rt.seq.Name)
			if err != nil {
				s.report("read sequence settings", err)
				return
			}
			rt.settings.Store(s.settingsOf(seq))
		}) {
			rt.reloading.Store(false) // shutting down
		}
	}
	return st
}

// tracksDate reports whether a format shows more of the date than the
// reset period fixes, so two numbers of one period can render different
// dates.
func tracksDate(p format.Parts, r Reset) bool {
	switch r {
	case ResetNever:
		return p.Year || p.Month || p.Day
	case ResetYearly:
		return p.Month || p.Day
	case ResetMonthly:
		return p.Day
	}
	return false
}

// dateKey is the ledger's text for the date an ID shows ("" when the
// sequence does not track dates): YYYY-MM-DD, with XX for the parts the
// format does not show and trailing ones left out ("2026", "2026-03").
func (rt *seqRuntime) dateKey(d format.Date) string {
	if !rt.tracksDate {
		return ""
	}
	k := rt.tmpl.DateKey(d)
	p := rt.tmpl.Parts()
	y, m, dd := "XXXX", "XX", "XX"
	if p.Year {
		y = fmt.Sprintf("%04d", k.Year)
	}
	if p.Month {
		m = fmt.Sprintf("%02d", k.Month)
	}
	if p.Day {
		dd = fmt.Sprintf("%02d", k.Day)
	}
	switch {
	case !p.Month && !p.Day:
		return y
	case !p.Day:
		return y + "-" + m
	}
	return y + "-" + m + "-" + dd
}

// parseDateKey reads a dateKey back (parts shown as XX are zero).
func parseDateKey(k string) format.Date {
	var d format.Date
	parts := strings.Split(k, "-")
	num := func(i int) int {
		if i >= len(parts) {
			return 0
		}
		v, _ := strconv.Atoi(parts[i])
		return v
	}
	d.Year, d.Month, d.Day = num(0), num(1), num(2)
	return d
}

// enterRuntime is enter, then runtime: once it succeeds, the caller calls
// s.running.Done when it is finished.
func (s *Service) enterRuntime(ctx context.Context, name string) (*seqRuntime, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	rt, err := s.runtime(ctx, name)
	if err != nil {
		s.running.Done()
		return nil, err
	}
	return rt, nil
}

// readRuntime is runtime for a read, refused with ErrClosed once Close
// has begun.
func (s *Service) readRuntime(ctx context.Context, name string) (*seqRuntime, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.runtime(ctx, name)
}

// runtime returns the process's view of a sequence, loading it once.
func (s *Service) runtime(ctx context.Context, name string) (*seqRuntime, error) {
	if rt := (*s.seqs.Load())[name]; rt != nil {
		return rt, nil
	}
	if err := ValidateName("sequence", name); err != nil {
		return nil, NotFoundf("sequence %q", name)
	}
	seq, err := s.store.SequenceGet(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.addRuntime(seq)
}

func (s *Service) addRuntime(seq *Sequence) (*seqRuntime, error) {
	tmpl, err := seq.Template()
	if err != nil {
		return nil, fmt.Errorf("stored format of %q: %w", seq.Name, err)
	}
	loc, err := seq.Location()
	if err != nil {
		return nil, fmt.Errorf("stored timezone of %q: %w", seq.Name, err)
	}
	parts := tmpl.Parts()
	rt := &seqRuntime{seq: seq, tmpl: tmpl, loc: loc, usesDate: seq.Reset != ResetNever || parts.Year || parts.Month || parts.Day,
		tracksDate: tracksDate(parts, seq.Reset), allocs: map[allocKey]*allocator{}, budgets: map[string]*periodBudget{}}
	rt.settings.Store(s.settingsOf(seq))
	s.seqsMu.Lock()
	defer s.seqsMu.Unlock()
	old := *s.seqs.Load()
	if got := old[seq.Name]; got != nil {
		return got, nil
	}
	m := maps.Clone(old)
	m[seq.Name] = rt
	s.seqs.Store(&m)
	return rt, nil
}

// SequenceCreate validates params, fills defaults and stores a new sequence.
func (s *Service) SequenceCreate(ctx context.Context, p SequenceCreateParams) (*SequenceState, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	seq, err := NewSequence(p)
	if err != nil {
		return nil, err
	}
	created, err := s.store.SequenceCreate(ctx, seq)
	if err != nil {
		return nil, s.exampleOverlap(err, seq)
	}
	seq = created
	if _, err := s.addRuntime(seq); err != nil {
		return nil, err
	}
	return s.SequenceGet(ctx, seq.Name)
}

// exampleOverlap fills the example ID of an *OverlapError for seq, the
// sequence being created or changed.
func (s *Service) exampleOverlap(err error, seq *Sequence) error {
	var oe *OverlapError
	if !errors.As(err, &oe) || oe.Example != "" {
		return err
	}
	tmpl, terr := seq.Template()
	loc, lerr := seq.Location()
	if terr == nil && lerr == nil {
		if id, rerr := tmpl.Render(oe.Number, Today(s.cfg.Now(), loc)); rerr == nil {
			oe.Example = id
		}
	}
	return err
}

// SequenceGet returns a sequence with its figures for the current period.
func (s *Service) SequenceGet(ctx context.Context, name string) (*SequenceState, error) {
	return s.SequenceGetAt(ctx, name, "")
}

// SequenceGetAt returns a sequence with the figures of the period date
// (YYYY-MM-DD) falls in; "" means today.
func (s *Service) SequenceGetAt(ctx context.Context, name, date string) (*SequenceState, error) {
	rt, err := s.readRuntime(ctx, name)
	if err != nil {
		return nil, err
	}
	var d format.Date
	if date != "" {
		if d, err = ParseDate("date", date); err != nil {
			return nil, err
		}
	} else {
		d = Today(s.cfg.Now(), rt.loc)
	}
	seq, err := s.store.SequenceGet(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.state(ctx, seq, seq.Period(d))
}

// SequenceList returns every sequence with its figures.
func (s *Service) SequenceList(ctx context.Context) ([]*SequenceState, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	seqs, err := s.store.SequenceList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*SequenceState, 0, len(seqs))
	for _, seq := range seqs {
		rt, err := s.runtime(ctx, seq.Name)
		if err != nil {
			return nil, err
		}
		st, err := s.state(ctx, seq, seq.Period(Today(s.cfg.Now(), rt.loc)))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// state computes a period's figures from the database alone, so every
// server reports the same.
func (s *Service) state(ctx context.Context, seq *Sequence, period string) (*SequenceState, error) {
	c, err := s.store.SequenceCounterGet(ctx, seq.Name, period)
	if err != nil {
		return nil, err
	}
	st := &SequenceState{Sequence: *seq, Period: period, Next: c.Last + 1, Voided: c.Voided, Leased: c.Leased,
		Reserved: c.Reserved, Closed: c.Closed}
	if c.Last == math.MaxInt64 {
		st.Next = c.Last
	}
	taken := c.Last - seq.Start + 1 // issued, leased or reserved, including voided
	st.Issued = max(taken-c.Voided-c.Leased-c.Reserved, 0)
	st.Remaining = Remaining(c.Last, seq.Max)
	st.Warning = float64(taken)/float64(seq.Size()) >= seq.WarnAt
	return st, nil
}

// SequencePatch changes max, warn_at, the window of accepted dates or
// confirm_within.
func (s *Service) SequencePatch(ctx context.Context, name string, p SequencePatchParams) (*SequenceState, error) {
	rt, err := s.enterRuntime(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.running.Done()
	if p == (SequencePatchParams{}) {
		return nil, Invalidf("", "nothing to change: give max, warn_at, periods_back, periods_ahead, confirm_within and/or label")
	}
	var label **LabelSpec
	if p.Label != nil {
		l, err := savedLabel(p.Label)
		if err != nil {
			return nil, err
		}
		label = &l
	}
	if p.Max != nil {
		if *p.Max < 0 {
			return nil, Invalidf("max", "must be 0 or more, got %d", *p.Max)
		}
		if *p.Max < rt.seq.Start {
			return nil, Invalidf("max", "must be at least start (%d), got %d", rt.seq.Start, *p.Max)
		}
		if capacity, bounded := rt.tmpl.Capacity(); bounded && *p.Max > capacity-1 {
			return nil, Invalidf("max", "%d does not fit the format's mask, whose largest number is %d", *p.Max, capacity-1)
		}
	}
	if p.WarnAt != nil && (*p.WarnAt <= 0 || *p.WarnAt > 1 || *p.WarnAt != *p.WarnAt) {
		return nil, Invalidf("warn_at", "must be a fraction in (0, 1], got %v", *p.WarnAt)
	}
	cur := rt.settings.Load()
	back, ahead := cur.periodsBack, cur.periodsAhead
	if p.PeriodsBack != nil {
		back = *p.PeriodsBack
	}
	if p.PeriodsAhead != nil {
		ahead = *p.PeriodsAhead
	}
	if err := validateWindow(back, ahead); err != nil {
		return nil, err
	}
	if p.ConfirmWithin != nil {
		if err := validateConfirmWithin("confirm_within", time.Duration(*p.ConfirmWithin), true); err != nil {
			return nil, err
		}
	}
	seq, err := s.store.SequenceUpdate(ctx, SequenceUpdateParams{Name: name, Max: p.Max, WarnAt: p.WarnAt,
		PeriodsBack: p.PeriodsBack, PeriodsAhead: p.PeriodsAhead, ConfirmWithin: p.ConfirmWithin, Label: label})
	if err != nil {
		next := *rt.seq
		if p.Max != nil {
			next.Max = *p.Max
		}
		return nil, s.exampleOverlap(err, &next)
	}
	rt.settings.Store(s.settingsOf(seq))
	rt.allocMu.Lock()
	for _, a := range rt.allocs {
		a.clearExhausted()
	}
	rt.allocMu.Unlock()
	return s.state(ctx, seq, seq.Period(Today(s.cfg.Now(), rt.loc)))
}

// nextPlan is what prepareNext worked out for a request.
type nextPlan struct {
	date      format.Date
	period    string
	dateKey   string
	reference string
	confirmBy *time.Time
}

// Next takes Count contiguous numbers from a sequence and renders them.
// With p.Deliver set, the result is handed to it before Next returns, and
// numbers it could not deliver are given back (see NextParams.Deliver).
func (s *Service) Next(ctx context.Context, p NextParams) (*NextResult, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var np nextPlan
	rt, err := s.prepareNext(ctx, &p, &np)
	if err != nil {
		return nil, err
	}
	// The in-memory path needs no shutdown bookkeeping: a retired
	// allocator hands out nothing more, and Close waits for the answers of
	// numbers already out (see allocator.drain and Service.waitBusy).
	if !p.Record && p.IdempotencyKey == "" && p.Reference == "" && np.confirmBy == nil && rt.seq.Mode == ModeCached && p.Count <= rt.seq.BlockSize {
		for {
			a := rt.allocatorFor(s, allocKey{np.period, np.dateKey})
			if a == nil {
				return nil, ErrClosed
			}
			var t taken
			err := a.take(ctx, p.Count, &t)
			if errors.Is(err, errRetired) {
				// Given back meanwhile (idle, pushed out, shutting down):
				// forget it and ask again.
				rt.last.CompareAndSwap(a, nil)
				if s.closed.Load() {
					return nil, ErrClosed
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				continue
			}
			if errors.Is(err, errDirect) {
				break
			}
			if err != nil {
				return nil, err
			}
			res, err := s.result(rt, np, t.first, p.Count, t.counterLast, t.max, false)
			if err == nil && p.Deliver != nil {
				err = p.Deliver(res)
			}
			if err != nil {
				a.putBack(t)
				return nil, err
			}
			a.delivered(t)
			return res, nil
		}
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	req := SequenceAdvanceRequest{Count: p.Count, DateKey: np.dateKey, Reference: p.Reference, ConfirmBy: np.confirmBy}
	var hash string
	if p.IdempotencyKey != "" {
		req.Idempotency, hash, err = s.idempotency(rt, p, np)
		if err != nil {
			return nil, err
		}
		release, err := s.keyInFlight(req.Idempotency)
		if err != nil {
			return nil, err
		}
		defer release()
		rec, err := s.store.IdempotencyGet(ctx, req.Idempotency.Scope, p.IdempotencyKey)
		switch {
		case err == nil:
			return s.deliverReplay(p, rt, rec, hash)
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	r, err := s.advance.Do(ctx, advanceKey{rt.seq.Name, np.period, LedgerIssued}, req)
	if err != nil {
		if errors.Is(err, batch.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	if r.Replayed != nil {
		return s.deliverReplay(p, rt, r.Replayed, hash)
	}
	if r.Err != nil {
		return nil, r.Err
	}
	if s.cfg.Failpoint != nil {
		s.cfg.Failpoint(FailpointAfterCommit)
	}
	res, err := s.result(rt, np, r.First, p.Count, r.CounterLast, r.Max, false)
	if err == nil && p.Deliver != nil {
		err = p.Deliver(res)
	}
	switch {
	case err == nil, p.IdempotencyKey != "":
		// Delivered, or not but recoverable: a retry with the key gets
		// the numbers back.
		r.answer.done()
	default:
		// Not delivered: the numbers go back, and the entry counts as
		// answered only once they are.
		s.giveBack(rt.seq.Name, np.period, []ReturnSpan{{Span{r.First, r.Last}, r.Row}}, nil, ReasonCancelled, r.answer.done)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// prepareNext validates p, filling its defaults, and works out the date,
// period, ledger date and deadline of the numbers.
func (s *Service) prepareNext(ctx context.Context, p *NextParams, np *nextPlan) (*seqRuntime, error) {
	rt, err := s.runtime(ctx, p.Sequence)
	if err != nil {
		return nil, err
	}
	if p.Count == 0 {
		p.Count = 1
	}
	if p.Count < 1 || p.Count > CountMax {
		return nil, Invalidf("count", "must be between 1 and %d, got %d", CountMax, p.Count)
	}
	if p.Reference != "" {
		if err := ValidateLabel("reference", p.Reference, ReferenceMax); err != nil {
			return nil, err
		}
	}
	set := rt.current(s)
	switch {
	case p.Date != "":
		if np.date, err = ParseDate("date", p.Date); err != nil {
			return nil, err
		}
	case rt.usesDate:
		np.date = Today(s.cfg.Now(), rt.loc)
	}
	np.period = rt.seq.Period(np.date)
	if p.Date != "" && rt.seq.Reset != ResetNever {
		if err := checkWindow(rt.seq, set, np.date, Today(s.cfg.Now(), rt.loc)); err != nil {
			return nil, err
		}
	}
	within := set.confirmWithin
	if p.ConfirmWithin != 0 {
		if err := validateConfirmWithin("confirm_within", p.ConfirmWithin, false); err != nil {
			return nil, err
		}
		within = p.ConfirmWithin
	}
	if within > 0 {
		by := s.now().Add(within)
		np.confirmBy = &by
	}
	np.dateKey = rt.dateKey(np.date)
	np.reference = p.Reference
	return rt, nil
}

// ReferenceMax is the longest reference, in bytes.
const ReferenceMax = 200

// periodIndex numbers periods so that consecutive periods differ by one.
func periodIndex(r Reset, d format.Date) int64 {
	switch r {
	case ResetYearly:
		return int64(d.Year)
	case ResetMonthly:
		return int64(d.Year)*12 + int64(d.Month) - 1
	case ResetDaily:
		return time.Date(d.Year, time.Month(d.Month), d.Day, 12, 0, 0, 0, time.UTC).Unix() / 86400
	}
	return 0
}

// stepPeriods returns a date n periods of reset after d (before, for n
// negative): the same day of the year or the first of the month.
func stepPeriods(r Reset, d format.Date, n int) format.Date {
	t := time.Date(d.Year, time.Month(d.Month), d.Day, 12, 0, 0, 0, time.UTC)
	switch r {
	case ResetYearly:
		t = t.AddDate(n, 0, 0)
	case ResetMonthly:
		t = time.Date(d.Year, time.Month(d.Month)+time.Month(n), 1, 12, 0, 0, 0, time.UTC)
	default:
		t = t.AddDate(0, 0, n)
	}
	return format.Date{Year: t.Year(), Month: int(t.Month()), Day: t.Day()}
}

// checkWindow refuses a document date outside the periods a resetting
// sequence accepts.
func checkWindow(seq *Sequence, set *seqSettings, date, today format.Date) error {
	di, ti := periodIndex(seq.Reset, date), periodIndex(seq.Reset, today)
	if di >= ti-int64(set.periodsBack) && di <= ti+int64(set.periodsAhead) {
		return nil
	}
	lo, hi := stepPeriods(seq.Reset, today, -set.periodsBack), stepPeriods(seq.Reset, today, set.periodsAhead)
	return Invalidf("date", "%s falls in period %s, outside the periods sequence %q accepts (%s to %s, set by periods_back and periods_ahead): check the document date",
		DateString(date), seq.Period(date), seq.Name, seq.Period(lo), seq.Period(hi))
}

// AdvanceFunc takes numbers the way Store.SequenceAdvance does, for
// example inside a caller's own transaction.
type AdvanceFunc func(ctx context.Context, p SequenceAdvanceParams) ([]SequenceAdvanceResult, error)

// NextVia takes numbers through advance instead of the service's group
// commit, and renders them. Stores use it to offer a "…Tx" twin of Next
// that runs inside the caller's transaction (see postgres.NextTx), so the
// numbers commit or roll back with the caller's work. The numbers are
// recorded as issued (or reserved) whatever the sequence's mode, and as
// answered: the caller has them when its transaction commits.
func (s *Service) NextVia(ctx context.Context, p NextParams, advance AdvanceFunc) (*NextResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	var np nextPlan
	rt, err := s.prepareNext(ctx, &p, &np)
	if err != nil {
		return nil, err
	}
	req := SequenceAdvanceRequest{Count: p.Count, DateKey: np.dateKey, Reference: p.Reference, ConfirmBy: np.confirmBy}
	var hash string
	if p.IdempotencyKey != "" {
		if req.Idempotency, hash, err = s.idempotency(rt, p, np); err != nil {
			return nil, err
		}
	}
	res, err := advance(ctx, SequenceAdvanceParams{Sequence: rt.seq.Name, Period: np.period, Kind: LedgerIssued, Owner: s.cfg.Owner,
		Requests: []SequenceAdvanceRequest{req}})
	if err != nil {
		return nil, err
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("advance returned %d results for 1 request", len(res))
	}
	if res[0].Replayed != nil {
		return s.replay(rt, res[0].Replayed, hash, p.IdempotencyKey)
	}
	if res[0].Err != nil {
		return nil, res[0].Err
	}
	return s.result(rt, np, res[0].First, p.Count, res[0].CounterLast, res[0].Max, false)
}

// result renders a request's numbers. counterLast and maxv are the
// period's counter and max as last seen, for remaining and warning.
func (s *Service) result(rt *seqRuntime, np nextPlan, first, count, counterLast, maxv int64, replayed bool) (*NextResult, error) {
	r := &NextResult{
		Sequence: rt.seq.Name, First: first, Last: first + count - 1, Count: count,
		Period: np.period, Replayed: replayed, Status: StatusIssued, ConfirmBy: np.confirmBy, Reference: np.reference,
	}
	if np.confirmBy != nil {
		r.Status = StatusReserved
	}
	if maxv > 0 || counterLast > 0 {
		r.Remaining = Remaining(counterLast, maxv)
		size := maxv - rt.seq.Start
		if size < math.MaxInt64 {
			size++
		}
		r.Warning = float64(counterLast-rt.seq.Start+1)/float64(size) >= rt.settings.Load().warnAt
	}
	// All IDs are rendered into one buffer and turned into one string;
	// each ID is a substring of it, so a roll of 1,000 labels costs a
	// handful of allocations, not a thousand.
	var stack [64]byte
	buf := stack[:0]
	ends := make([]int, 0, min(count, 1024))
	for i := int64(0); i < count; i++ {
		var err error
		if buf, err = rt.tmpl.AppendRender(buf, first+i, np.date); err != nil {
			// The store keeps every number within max, and max within
			// the mask, so this is a broken invariant, not bad input.
			return nil, fmt.Errorf("render %d with %q: %w", first+i, rt.seq.Format, err)
		}
		ends = append(ends, len(buf))
	}
	all := string(buf)
	if count == 1 {
		r.one[0] = all
		r.IDs = r.one[:]
		return r, nil
	}
	r.IDs = make([]string, count)
	prev := 0
	for i, end := range ends {
		r.IDs[i] = all[prev:end]
		prev = end
	}
	return r, nil
}

// flushAdvance writes one group commit. Issued entries start pending and
// are settled once every answer of the batch was delivered; a commit whose
// outcome was lost is looked up again later (see resolve).
func (s *Service) flushAdvance(ctx context.Context, k advanceKey, reqs []SequenceAdvanceRequest, turn batch.Turn) ([]SequenceAdvanceResult, error) {
	ctx, cancel := s.storeCtx(ctx)
	defer cancel()
	id := newBatchID()
	start := time.Now()
	res, err := s.store.SequenceAdvance(ctx, SequenceAdvanceParams{
		Sequence: k.seq, Period: k.period, Kind: k.kind, Owner: s.cfg.Owner, Batch: id, Pending: k.kind == LedgerIssued, Requests: reqs, Turn: turn,
	})
	if rerun(err) {
		return nil, err // rolled back behind a failed batch: it runs again
	}
	s.cfg.Metrics.Observe(BatchEvent{Kind: string(k.kind), Size: len(reqs), Duration: time.Since(start), Err: err})
	s.observe("group commit", err)
	if err != nil {
		if unavailable(err) {
			s.resolveLater(k, id, reqs)
			if !errors.Is(err, ErrUnavailable) {
				err = Errorf(ErrUnavailable, "the database did not answer within %s", s.cfg.StoreTimeout)
			}
		}
		return nil, err
	}
	if k.kind == LedgerIssued {
		// One tracker per pending issued entry, counting the requests
		// whose numbers it holds (reserved entries settle by confirm or
		// expiry instead).
		trackers := map[int64]*answerTracker{}
		for i := range res {
			if res[i].Err != nil || res[i].Replayed != nil || res[i].Row == 0 || reqs[i].ConfirmBy != nil {
				continue
			}
			t := trackers[res[i].Row]
			if t == nil {
				t = &answerTracker{svc: s, row: res[i].Row}
				trackers[res[i].Row] = t
			}
			t.left.Add(1)
			res[i].answer = t
		}
	}
	return res, nil
}

// SequenceParse decodes an ID and says what the ledger says of it.
func (s *Service) SequenceParse(ctx context.Context, name, id string) (*ParseResult, error) {
	rt, err := s.readRuntime(ctx, name)
	if err != nil {
		return nil, err
	}
	number, d, period, err := s.decode(rt, id)
	if errors.Is(err, format.ErrBadCheck) {
		return &ParseResult{ID: id, Number: number, Period: period, Valid: false, Status: StatusUnissued,
			Detail: "a check character is wrong: the sequence never issued this ID (mistyped or misread?)"}, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := LookUpNumber(ctx, s.store, name, period, number)
	if err != nil {
		return nil, err
	}
	key := rt.dateKey(d)
	st, detail := NumberStatusOf(*info, key)
	res := &ParseResult{ID: id, Number: number, Period: period, Valid: true, Status: st, Detail: detail}
	if t := info.Taken; t != nil {
		switch {
		case st == StatusUnissued && t.Date != "" && key != "" && t.Date != key:
			np := nextPlan{date: parseDateKey(t.Date)}
			if np.date.Month == 0 {
				np.date.Month = 1
			}
			if np.date.Day == 0 {
				np.date.Day = 1
			}
			if r, err := s.result(rt, np, number, 1, 0, 0, false); err == nil {
				res.IssuedAs = r.IDs[0]
				res.Detail = fmt.Sprintf("number %d was handed out as %s, not as %s", number, res.IssuedAs, id)
			}
		case st == StatusReserved:
			res.ConfirmBy = t.ConfirmBy
		}
		if st != StatusUnissued {
			res.Reference = t.Reference
			if c := info.Confirmed; c != nil && c.Reference != "" {
				res.Reference = c.Reference
			}
		}
	}
	return res, nil
}

// decode turns an ID into its number, date and period. A bad check
// character returns them with an error wrapping format.ErrBadCheck.
func (s *Service) decode(rt *seqRuntime, id string) (int64, format.Date, string, error) {
	d, err := rt.tmpl.Decode(id)
	if err != nil && !errors.Is(err, format.ErrBadCheck) {
		return 0, format.Date{}, "", Invalidf("id", "%q does not match the format %q of sequence %q", id, rt.seq.Format, rt.seq.Name)
	}
	period := ""
	if rt.seq.Reset != ResetNever {
		period = rt.seq.Period(d.Date)
	}
	return d.Number, d.Date, period, err
}

// SequenceVoid voids one issued number with a reason.
func (s *Service) SequenceVoid(ctx context.Context, p VoidParams) (*LedgerEntry, error) {
	rt, err := s.enterRuntime(ctx, p.Sequence)
	if err != nil {
		return nil, err
	}
	defer s.running.Done()
	if p.Reason == "" {
		return nil, Invalidf("reason", "is required: say why the number is voided")
	}
	if err := ValidateLabel("reason", p.Reason, 1000); err != nil {
		return nil, err
	}
	var n int64
	var period string
	var d format.Date
	switch {
	case p.Number != nil && p.ID != "":
		return nil, Invalidf("", "give either number or id, not both")
	case p.Number != nil:
		n = *p.Number
		if rt.seq.Reset != ResetNever {
			if p.Date == "" {
				return nil, Invalidf("date", "is required with number for a sequence that resets %s: it picks the period", rt.seq.Reset)
			}
			if d, err = ParseDate("date", p.Date); err != nil {
				return nil, err
			}
			period = rt.seq.Period(d)
		}
	case p.ID != "":
		if n, d, period, err = s.decode(rt, p.ID); err != nil {
			if errors.Is(err, format.ErrBadCheck) {
				return nil, Invalidf("id", "%q has a wrong check character", p.ID)
			}
			return nil, err
		}
	default:
		return nil, Invalidf("", "give the number or the id to void")
	}
	if n < rt.seq.Start {
		return nil, Invalidf("number", "%d was never issued: the sequence starts at %d", n, rt.seq.Start)
	}
	rt.allocMu.Lock()
	var mine bool
	for k, a := range rt.allocs {
		if k.period == period && a.holds(n) {
			mine = true
		}
	}
	rt.allocMu.Unlock()
	if mine {
		return nil, Invalidf("number", "%d was never issued: it is in this server's lease and was not handed out", n)
	}
	return VoidRange(ctx, s.store, SequenceVoidParams{
		Sequence: rt.seq.Name, Period: period, First: n, Last: n, Reason: p.Reason, Owner: s.cfg.Owner, Force: p.Force,
	})
}

// SequenceConfirm confirms two-phase numbers First..Last (returned
// reserved by Next): they become issued. It also lets an operator confirm
// issued numbers whose answer the server never confirmed sent (`allot
// audit` lists them). Confirming numbers already confirmed with the same
// reference is a replay (replayed is true).
func (s *Service) SequenceConfirm(ctx context.Context, p ConfirmParams) (entry *LedgerEntry, replayed bool, err error) {
	rt, err := s.enterRuntime(ctx, p.Sequence)
	if err != nil {
		return nil, false, err
	}
	defer s.running.Done()
	if err := s.checkPeriod(rt, p.Period); err != nil {
		return nil, false, err
	}
	switch {
	case p.First < rt.seq.Start:
		return nil, false, Invalidf("first", "must be at least the sequence's start (%d), got %d", rt.seq.Start, p.First)
	case p.Last < p.First:
		return nil, false, Invalidf("last", "must be at least first (%d), got %d", p.First, p.Last)
	case p.Last-p.First >= CountMax:
		return nil, false, Invalidf("last", "confirm at most %d numbers at once", CountMax)
	}
	if err := ValidateLabel("reference", p.Reference, ReferenceMax); err != nil {
		return nil, false, err
	}
	cp := SequenceConfirmParams{Sequence: p.Sequence, Period: p.Period, Span: Span{p.First, p.Last}, Reference: p.Reference,
		Owner: s.cfg.Owner, Now: s.now()}
	err = s.store.SequenceLedgerTx(ctx, "confirm", func(tx LedgerTx) (err error) {
		entry, replayed, err = confirmTx(ctx, tx, cp)
		return err
	})
	if err != nil {
		return nil, false, err // what the closure saw may not have committed
	}
	return entry, replayed, nil
}

// checkPeriod checks a period named by a caller against the reset.
func (s *Service) checkPeriod(rt *seqRuntime, period string) error {
	want := map[Reset]string{ResetYearly: "2006", ResetMonthly: "2006-01", ResetDaily: "2006-01-02"}[rt.seq.Reset]
	shown := map[Reset]string{ResetYearly: "YYYY, e.g. 2026", ResetMonthly: "YYYY-MM, e.g. 2026-01", ResetDaily: "YYYY-MM-DD, e.g. 2026-01-31"}[rt.seq.Reset]
	if rt.seq.Reset == ResetNever {
		if period != "" {
			return Invalidf("period", "sequence %q never resets: leave period out", rt.seq.Name)
		}
		return nil
	}
	if period == "" {
		return Invalidf("period", "is required: sequence %q resets %s (give it as %s)", rt.seq.Name, rt.seq.Reset, shown)
	}
	if t, err := time.Parse(want, period); err != nil || t.Format(want) != period {
		return Invalidf("period", "%q is not a %s period: write it as %s", period, rt.seq.Reset, shown)
	}
	return nil
}

// SequencePeriodClose closes a period of a resetting sequence to new
// numbers (reopen opens it again). This server first gives back its own
// leases of the period; a lease another running server holds makes the
// close fail with ErrInvalidState.
func (s *Service) SequencePeriodClose(ctx context.Context, name, period string, reopen bool) (*SequenceState, error) {
	rt, err := s.enterRuntime(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.running.Done()
	if rt.seq.Reset == ResetNever {
		return nil, Invalidf("period", "sequence %q never resets, so it has no periods to close", name)
	}
	if err := s.checkPeriod(rt, period); err != nil {
		return nil, err
	}
	if !reopen {
		rt.allocMu.Lock()
		var mine []*allocator
		for k, a := range rt.allocs {
			if k.period == period {
				mine = append(mine, a)
				delete(rt.allocs, k)
			}
		}
		rt.allocMu.Unlock()
		if l := rt.last.Load(); l != nil && l.key.period == period {
			rt.last.CompareAndSwap(l, nil)
		}
		if err := s.retire(ctx, rt, mine, "unused rest of a lease, given back when the period was closed"); err != nil {
			return nil, err
		}
	}
	cp := SequencePeriodCloseParams{Sequence: name, Period: period, Reopen: reopen, Owner: s.cfg.Owner}
	if err := s.store.SequenceLedgerTx(ctx, "close period", func(tx LedgerTx) error { return closePeriodTx(ctx, tx, cp) }); err != nil {
		return nil, err
	}
	if reopen {
		// This server's allocators take numbers again at once (other
		// servers' ask the store again within a second).
		rt.allocMu.Lock()
		for k, a := range rt.allocs {
			if k.period == period {
				a.clearExhausted()
			}
		}
		rt.allocMu.Unlock()
	}
	seq, err := s.store.SequenceGet(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.state(ctx, seq, period)
}

// SequenceLedger returns a page of a sequence's ledger. after is the
// cursor from the previous page ("" for the first); limit is 1..1000,
// 0 meaning 100.
func (s *Service) SequenceLedger(ctx context.Context, name, after string, limit int) (*LedgerPage, error) {
	if _, err := s.readRuntime(ctx, name); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, Invalidf("limit", "must be between 1 and 1000, got %d", limit)
	}
	var afterID int64
	if after != "" {
		v, err := strconv.ParseInt(after, 10, 64)
		if err != nil || v < 0 {
			return nil, Invalidf("after", "%q is not a cursor: pass the next value of the previous page", after)
		}
		afterID = v
	}
	entries, err := s.store.SequenceLedger(ctx, SequenceLedgerParams{Sequence: name, AfterID: afterID, Limit: limit + 1})
	if err != nil {
		return nil, err
	}
	page := &LedgerPage{Entries: entries}
	if len(entries) > limit {
		page.Entries = entries[:limit]
		page.Next = strconv.FormatInt(entries[limit-1].ID, 10)
	}
	if page.Entries == nil {
		page.Entries = []LedgerEntry{}
	}
	return page, nil
}

type advanceKey struct {
	seq    string
	period string
	kind   LedgerKind
}

func newBatchID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) &^ (1 << 63))
}
