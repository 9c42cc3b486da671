package allot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot/allot/batch"
	"github.com/allot/allot/format"
)

// Config configures a Service. Fill it, then pass it to New, which applies
// defaults and validates it.
type Config struct {
	// Store is the source of truth. Required.
	Store Store
	// Logger receives structured logs. Defaults to slog.Default().
	Logger *slog.Logger
	// Owner names this process in the ledger. Defaults to host:pid:random.
	Owner string
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// IdempotencyTTL is how long idempotency keys are kept; at least 24h.
	// Defaults to 24h.
	IdempotencyTTL time.Duration
	// LeaseBlocksMax caps how many blocks a cached sequence leases at once
	// when demand is high. A crash can leave at most this many blocks
	// unissued (all recorded in the ledger). Defaults to 64.
	LeaseBlocksMax int64
	// Metrics receives measurements. Defaults to a no-op.
	Metrics Observer
	// Failpoint, if set, is called at named points so crash tests can kill
	// the process exactly there. The points are FailpointAfterCommit.
	// Defaults to nil (no failpoints).
	Failpoint func(name string)
}

// FailpointAfterCommit is reached after an Idempotency-Key request's
// numbers committed and before the response is built.
const FailpointAfterCommit = "after-commit"

// Observer receives the service's measurements. Implementations must be
// safe for concurrent use.
type Observer interface {
	// ObserveBatch is called after each group commit with its kind
	// ("issued" or "leased"), number of requests and duration.
	ObserveBatch(kind string, size int, d time.Duration, err error)
}

type nopObserver struct{}

func (nopObserver) ObserveBatch(string, int, time.Duration, error) {}

// IdempotencyTTLDefault is how long idempotency keys are kept by default.
const IdempotencyTTLDefault = 24 * time.Hour

// LeaseBlocksMaxDefault caps how many blocks one lease takes.
const LeaseBlocksMaxDefault int64 = 64

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.Owner = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = IdempotencyTTLDefault
	}
	if c.LeaseBlocksMax == 0 {
		c.LeaseBlocksMax = LeaseBlocksMaxDefault
	}
	if c.Metrics == nil {
		c.Metrics = nopObserver{}
	}
	return c
}

func (c Config) validate() error {
	if c.Store == nil {
		return errors.New("allot: Config.Store is required")
	}
	if c.IdempotencyTTL < 24*time.Hour {
		return fmt.Errorf("allot: Config.IdempotencyTTL must be at least 24h, got %s", c.IdempotencyTTL)
	}
	if c.LeaseBlocksMax < 1 {
		return fmt.Errorf("allot: Config.LeaseBlocksMax must be at least 1, got %d", c.LeaseBlocksMax)
	}
	return nil
}

// Service hands out sequence numbers. It is safe for concurrent use, and
// any number of Services (in one process or many) may share one Store.
type Service struct {
	cfg   Config
	store Store
	log   *slog.Logger

	// seqs maps names to runtimes. It is read on every request and
	// written once per sequence, so it is copied on write and read
	// without locks.
	seqs   atomic.Pointer[map[string]*seqRuntime]
	seqsMu sync.Mutex

	advance *batch.Batcher[advanceKey, SequenceAdvanceRequest, SequenceAdvanceResult]
	pl      poolState

	inflightMu sync.Mutex
	inflight   map[string]struct{}

	closed  atomic.Bool
	running sync.WaitGroup
	bg      sync.WaitGroup
	stop    chan struct{}
}

type advanceKey struct {
	seq    string
	period string
	kind   LedgerKind
}

// seqRuntime is what a process keeps about one sequence: the immutable
// parts of its configuration, parsed once, and the cached-mode allocators.
type seqRuntime struct {
	seq  *Sequence // Max and WarnAt here may be stale: the store is asked for those
	tmpl *format.Template
	loc  *time.Location

	// usesDate is false when neither the format nor the reset needs a
	// date, so the hot path need not read the clock.
	usesDate bool

	allocs sync.Map // period -> *allocator
	// last is the allocator used most recently: almost every request is
	// for the current period, so this skips the map.
	last atomic.Pointer[allocator]
}

// New returns a Service over cfg.Store. It does not run migrations.
func New(cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger,
		inflight: make(map[string]struct{}),
		stop:     make(chan struct{}),
	}
	s.seqs.Store(&map[string]*seqRuntime{})
	s.advance = batch.New(s.flushAdvance, batch.Opts{Isolate: isolate})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.ServerStart(ctx, s.cfg.Owner); err != nil {
		return nil, fmt.Errorf("allot: register server: %w", err)
	}
	s.bg.Add(1)
	go s.janitor()
	s.initPools()
	return s, nil
}

// isolate says whether a failed batch should be retried request by
// request: when the store blamed the data (ErrInvalid), one request may be
// at fault, and the others must not fail with it.
func isolate(err error) bool { return errors.Is(err, ErrInvalid) }

// Store returns the service's store.
func (s *Service) Store() Store { return s.store }

// Owner returns the name this process records in the ledger.
func (s *Service) Owner() string { return s.cfg.Owner }

func (s *Service) flushAdvance(ctx context.Context, k advanceKey, reqs []SequenceAdvanceRequest) ([]SequenceAdvanceResult, error) {
	start := time.Now()
	res, err := s.store.SequenceAdvance(ctx, SequenceAdvanceParams{
		Sequence: k.seq, Period: k.period, Kind: k.kind, Owner: s.cfg.Owner, Requests: reqs,
	})
	s.cfg.Metrics.ObserveBatch(string(k.kind), len(reqs), time.Since(start), err)
	return res, err
}

// janitor purges idempotency keys past their TTL.
func (s *Service) janitor() {
	defer s.bg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n, err := s.store.IdempotencyPurge(ctx, s.cfg.Now().Add(-s.cfg.IdempotencyTTL))
			cancel()
			if err != nil {
				s.log.Warn("purge idempotency keys", "err", err)
			} else if n > 0 {
				s.log.Info("purged idempotency keys", "count", n)
			}
		}
	}
}

// enter marks a call in progress so Close can wait for it.
func (s *Service) enter() error {
	s.running.Add(1)
	if s.closed.Load() {
		s.running.Done()
		return ErrClosed
	}
	return nil
}

// Close stops taking requests, waits for those in progress, and records the
// unused rest of every leased block as voided, so a graceful shutdown
// leaves no unexplained gap. It returns when ctx ends at the latest.
func (s *Service) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		s.advance.Close()
		s.pl.claims.Close()
		s.pl.confirms.Close()
		s.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("allot: close: %w", ctx.Err())
	}
	var errs []error
	for _, rt := range *s.seqs.Load() {
		rt.allocs.Range(func(_, v any) bool {
			a := v.(*allocator)
			for _, sp := range a.drain() {
				_, err := s.store.SequenceVoid(ctx, SequenceVoidParams{
					Sequence: a.seq, Period: a.period, First: sp.first, Last: sp.last,
					Reason: "unused rest of a leased block, returned at shutdown", Owner: s.cfg.Owner, SkipVoided: true,
				})
				if err != nil {
					errs = append(errs, fmt.Errorf("void unused block %s[%s] %d-%d: %w", a.seq, a.period, sp.first, sp.last, err))
				}
			}
			return true
		})
	}
	if len(errs) == 0 {
		// Only a server whose unused numbers are all voided counts as
		// stopped: its other numbers are then known to be issued.
		if err := s.store.ServerStop(ctx, s.cfg.Owner); err != nil {
			errs = append(errs, fmt.Errorf("record stop: %w", err))
		}
	}
	return errors.Join(errs...)
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
	rt := &seqRuntime{seq: seq, tmpl: tmpl, loc: loc, usesDate: seq.Reset != ResetNever || parts.Year || parts.Month || parts.Day}
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
	seq, err = s.store.SequenceCreate(ctx, seq)
	if err != nil {
		return nil, err
	}
	if _, err := s.addRuntime(seq); err != nil {
		return nil, err
	}
	return s.SequenceGet(ctx, seq.Name)
}

// SequenceGet returns a sequence with its figures for the current period.
func (s *Service) SequenceGet(ctx context.Context, name string) (*SequenceState, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rt, err := s.runtime(ctx, name)
	if err != nil {
		return nil, err
	}
	seq, err := s.store.SequenceGet(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.state(ctx, rt, seq)
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
		st, err := s.state(ctx, rt, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Service) state(ctx context.Context, rt *seqRuntime, seq *Sequence) (*SequenceState, error) {
	period := seq.Period(Today(s.cfg.Now(), rt.loc))
	c, err := s.store.SequenceCounterGet(ctx, seq.Name, period)
	if err != nil {
		return nil, err
	}
	st := &SequenceState{Sequence: *seq, Period: period, Next: c.Last + 1, Voided: c.Voided}
	if c.Last == math.MaxInt64 {
		st.Next = c.Last
	}
	var local, lowest int64 = 0, -1
	if a := rt.allocator(period); a != nil {
		local, lowest = a.unissued()
	}
	if lowest >= 0 {
		st.Next = lowest
	}
	taken := c.Last - seq.Start + 1 // leased or issued, including voided
	st.Issued = max(taken-local-c.Voided, 0)
	st.Remaining = Remaining(c.Last, seq.Max)
	if st.Remaining < math.MaxInt64-local {
		st.Remaining += local
	}
	used := float64(taken-local) / float64(seq.Size())
	st.Warning = used >= seq.WarnAt
	return st, nil
}

// SequencePatch changes max or warn_at.
func (s *Service) SequencePatch(ctx context.Context, name string, p SequencePatchParams) (*SequenceState, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	rt, err := s.runtime(ctx, name)
	if err != nil {
		return nil, err
	}
	if p.Max == nil && p.WarnAt == nil {
		return nil, Invalidf("", "nothing to change: give max and/or warn_at")
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
	seq, err := s.store.SequenceUpdate(ctx, SequenceUpdateParams{Name: name, Max: p.Max, WarnAt: p.WarnAt})
	if err != nil {
		return nil, err
	}
	rt.allocs.Range(func(_, v any) bool {
		v.(*allocator).clearExhausted()
		return true
	})
	return s.state(ctx, rt, seq)
}

// Next takes Count contiguous numbers from a sequence and renders them.
func (s *Service) Next(ctx context.Context, p NextParams) (*NextResult, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rt, date, period, err := s.prepareNext(ctx, &p)
	if err != nil {
		return nil, err
	}
	// The in-memory path needs no shutdown bookkeeping here: a drained
	// allocator refuses to hand out more (see allocator.drain).
	if p.IdempotencyKey == "" && rt.seq.Mode == ModeCached && p.Count <= rt.seq.BlockSize {
		first, err := rt.allocatorFor(s, period).take(ctx, p.Count)
		if err != nil {
			return nil, err
		}
		return s.result(rt, period, date, first, p.Count, false)
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	if p.IdempotencyKey != "" {
		return s.nextIdempotent(ctx, rt, p, date, period)
	}
	first, err := s.nextDirect(ctx, rt, period, p.Count, nil)
	if err != nil {
		return nil, err
	}
	return s.result(rt, period, date, first, p.Count, false)
}

// prepareNext validates p, filling its defaults, and works out the date
// and period the numbers belong to.
func (s *Service) prepareNext(ctx context.Context, p *NextParams) (*seqRuntime, format.Date, string, error) {
	rt, err := s.runtime(ctx, p.Sequence)
	if err != nil {
		return nil, format.Date{}, "", err
	}
	if p.Count == 0 {
		p.Count = 1
	}
	if p.Count < 1 || p.Count > CountMax {
		return nil, format.Date{}, "", Invalidf("count", "must be between 1 and %d, got %d", CountMax, p.Count)
	}
	var date format.Date
	switch {
	case p.Date != "":
		if date, err = ParseDate("date", p.Date); err != nil {
			return nil, format.Date{}, "", err
		}
	case rt.usesDate:
		date = Today(s.cfg.Now(), rt.loc)
	}
	return rt, date, rt.seq.Period(date), nil
}

// AdvanceFunc takes numbers the way Store.SequenceAdvance does, for
// example inside a caller's own transaction.
type AdvanceFunc func(ctx context.Context, p SequenceAdvanceParams) ([]SequenceAdvanceResult, error)

// NextVia takes numbers through advance instead of the service's group
// commit, and renders them. Stores use it to offer a "…Tx" twin of Next
// that runs inside the caller's transaction (see postgres.NextTx), so the
// numbers commit or roll back with the caller's work. The numbers are
// recorded as issued whatever the sequence's mode.
func (s *Service) NextVia(ctx context.Context, p NextParams, advance AdvanceFunc) (*NextResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	rt, date, period, err := s.prepareNext(ctx, &p)
	if err != nil {
		return nil, err
	}
	req := SequenceAdvanceRequest{Count: p.Count}
	var hash string
	if p.IdempotencyKey != "" {
		var idem *IdempotencyParams
		idem, hash, err = s.idempotency(rt, p, date)
		if err != nil {
			return nil, err
		}
		req.Idempotency = idem
	}
	res, err := advance(ctx, SequenceAdvanceParams{Sequence: rt.seq.Name, Period: period, Kind: LedgerIssued, Owner: s.cfg.Owner,
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
	return s.result(rt, period, date, res[0].First, p.Count, false)
}

func (s *Service) result(rt *seqRuntime, period string, date format.Date, first, count int64, replayed bool) (*NextResult, error) {
	r := &NextResult{
		Sequence: rt.seq.Name, First: first, Last: first + count - 1, Count: count,
		Period: period, Replayed: replayed,
	}
	// All IDs are rendered into one buffer and turned into one string;
	// each ID is a substring of it, so a roll of 1,000 labels costs a
	// handful of allocations, not a thousand.
	var stack [64]byte
	buf := stack[:0]
	ends := make([]int, 0, min(count, 1024))
	for i := int64(0); i < count; i++ {
		var err error
		if buf, err = rt.tmpl.AppendRender(buf, first+i, date); err != nil {
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

// nextDirect takes numbers in a group-committed transaction.
func (s *Service) nextDirect(ctx context.Context, rt *seqRuntime, period string, count int64, idem *IdempotencyParams) (int64, error) {
	res, err := s.advance.Do(ctx, advanceKey{rt.seq.Name, period, LedgerIssued}, SequenceAdvanceRequest{Count: count, Idempotency: idem})
	if err != nil {
		if errors.Is(err, batch.ErrClosed) {
			return 0, ErrClosed
		}
		return 0, err
	}
	if res.Err != nil {
		return 0, res.Err
	}
	return res.First, nil
}

func (s *Service) nextIdempotent(ctx context.Context, rt *seqRuntime, p NextParams, date format.Date, period string) (*NextResult, error) {
	idem, hash, err := s.idempotency(rt, p, date)
	if err != nil {
		return nil, err
	}
	scope := idem.Scope
	slot := scope + "\x00" + p.IdempotencyKey

	s.inflightMu.Lock()
	if _, busy := s.inflight[slot]; busy {
		s.inflightMu.Unlock()
		return nil, Errorf(ErrIdempotencyInFlight, "key %q is in flight: its first request is still running; retry shortly", p.IdempotencyKey)
	}
	s.inflight[slot] = struct{}{}
	s.inflightMu.Unlock()
	defer func() {
		s.inflightMu.Lock()
		delete(s.inflight, slot)
		s.inflightMu.Unlock()
	}()

	rec, err := s.store.IdempotencyGet(ctx, scope, p.IdempotencyKey)
	switch {
	case err == nil:
		return s.replay(rt, rec, hash, p.IdempotencyKey)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	res, err := s.advance.Do(ctx, advanceKey{rt.seq.Name, period, LedgerIssued}, SequenceAdvanceRequest{Count: p.Count, Idempotency: idem})
	if err != nil {
		if errors.Is(err, batch.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	if res.Replayed != nil {
		return s.replay(rt, res.Replayed, hash, p.IdempotencyKey)
	}
	if res.Err != nil {
		return nil, res.Err
	}
	if s.cfg.Failpoint != nil {
		s.cfg.Failpoint(FailpointAfterCommit)
	}
	return s.result(rt, period, date, res.First, p.Count, false)
}

// idempotency validates an Idempotency-Key and digests the request.
func (s *Service) idempotency(rt *seqRuntime, p NextParams, date format.Date) (*IdempotencyParams, string, error) {
	if err := ValidateIdempotencyKey(p.IdempotencyKey); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte("count=" + strconv.FormatInt(p.Count, 10) + "\x00date=" + p.Date))
	hash := hex.EncodeToString(sum[:])
	idem := &IdempotencyParams{Scope: "sequence:" + rt.seq.Name, Key: p.IdempotencyKey, RequestHash: hash}
	if rt.usesDate {
		idem.Date = DateString(date)
	}
	return idem, hash, nil
}

func (s *Service) replay(rt *seqRuntime, rec *IdempotencyRecord, hash, key string) (*NextResult, error) {
	if rec.RequestHash != hash {
		return nil, Errorf(ErrIdempotencyMismatch, "key %q was first used with a different count or date", key)
	}
	var date format.Date
	if rec.Date != "" {
		var err error
		if date, err = ParseDate("date", rec.Date); err != nil {
			return nil, fmt.Errorf("stored idempotency record %q: %w", key, err)
		}
	}
	return s.result(rt, rec.Period, date, rec.First, rec.Last-rec.First+1, true)
}

// SequenceParse decodes an ID and says whether it was issued.
func (s *Service) SequenceParse(ctx context.Context, name, id string) (*ParseResult, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rt, err := s.runtime(ctx, name)
	if err != nil {
		return nil, err
	}
	number, period, err := s.decode(rt, id)
	if err != nil {
		if errors.Is(err, format.ErrBadCheck) {
			return &ParseResult{ID: id, Number: number, Period: period, Valid: false, Status: StatusUnissued}, nil
		}
		return nil, err
	}
	st, err := s.status(ctx, rt, period, number)
	if err != nil {
		return nil, err
	}
	return &ParseResult{ID: id, Number: number, Period: period, Valid: true, Status: st}, nil
}

// decode turns an ID into its number and period. A bad check character
// returns the number and period with an error wrapping format.ErrBadCheck.
func (s *Service) decode(rt *seqRuntime, id string) (int64, string, error) {
	d, err := rt.tmpl.Decode(id)
	period := ""
	if rt.seq.Reset != ResetNever {
		period = rt.seq.Period(d.Date)
	}
	if err != nil {
		if errors.Is(err, format.ErrBadCheck) {
			return d.Number, period, err
		}
		return 0, "", Invalidf("id", "%q does not match the format %q of sequence %q", id, rt.seq.Format, rt.seq.Name)
	}
	return d.Number, period, nil
}

func (s *Service) status(ctx context.Context, rt *seqRuntime, period string, n int64) (NumberStatus, error) {
	if a := rt.allocator(period); a != nil && a.holds(n) {
		return StatusUnissued, nil
	}
	return s.store.SequenceNumberStatus(ctx, rt.seq.Name, period, n)
}

// SequenceVoid voids one issued number with a reason.
func (s *Service) SequenceVoid(ctx context.Context, p VoidParams) (*LedgerEntry, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	rt, err := s.runtime(ctx, p.Sequence)
	if err != nil {
		return nil, err
	}
	if p.Reason == "" {
		return nil, Invalidf("reason", "is required: say why the number is voided")
	}
	if err := ValidateText("reason", p.Reason, 1000); err != nil {
		return nil, err
	}
	var n int64
	var period string
	switch {
	case p.Number != nil && p.ID != "":
		return nil, Invalidf("", "give either number or id, not both")
	case p.Number != nil:
		n = *p.Number
		if rt.seq.Reset != ResetNever {
			if p.Date == "" {
				return nil, Invalidf("date", "is required with number for a sequence that resets %s: it picks the period", rt.seq.Reset)
			}
			d, err := ParseDate("date", p.Date)
			if err != nil {
				return nil, err
			}
			period = rt.seq.Period(d)
		}
	case p.ID != "":
		if n, period, err = s.decode(rt, p.ID); err != nil {
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
	if a := rt.allocator(period); a != nil && a.holds(n) {
		return nil, Invalidf("number", "%d was never issued", n)
	}
	return s.store.SequenceVoid(ctx, SequenceVoidParams{
		Sequence: rt.seq.Name, Period: period, First: n, Last: n, Reason: p.Reason, Owner: s.cfg.Owner, Force: p.Force,
	})
}

// SequenceLedger returns a page of a sequence's ledger. after is the
// cursor from the previous page ("" for the first); limit is 1..1000,
// 0 meaning 100.
func (s *Service) SequenceLedger(ctx context.Context, name, after string, limit int) (*LedgerPage, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if _, err := s.runtime(ctx, name); err != nil {
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

// Ready checks the store.
func (s *Service) Ready(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.store.Ping(ctx)
}
