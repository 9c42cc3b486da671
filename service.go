package allot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot/allot/batch"
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
	// when demand is high (a lease also never takes more than
	// 1/LeaseFraction of what is left). Defaults to 64.
	LeaseBlocksMax int64
	// LeaseIdle is how long a cached sequence's lease for one period (or
	// document date) may sit unused before the server gives its unused
	// rest back. Defaults to 1m.
	LeaseIdle time.Duration
	// LeasesMax caps how many periods (or document dates) of one cached
	// sequence hold a lease in this process at once; using one more gives
	// back the lease used least recently. Defaults to 64.
	LeasesMax int
	// StoreTimeout bounds every store call made for requests (a group
	// commit, a claim batch) and by the background loops, so a frozen
	// database answers with ErrUnavailable instead of holding callers.
	// Defaults to 10s.
	StoreTimeout time.Duration
	// Metrics receives measurements. Defaults to a no-op.
	Metrics Observer
	// Admissions are asked, after the built-in sold-out cache and in
	// order, before claims reach the store (see Admission): a waiting
	// room, a Redis doorman. Defaults to none.
	Admissions []Admission
	// Failpoint, if set, is called at named points so crash tests can kill
	// the process exactly there. The points are FailpointAfterCommit.
	// Defaults to nil (no failpoints).
	Failpoint func(name string)
}

// FailpointAfterCommit is reached after a request's numbers committed and
// before its answer is built.
const FailpointAfterCommit = "after-commit"

// Defaults of Config.
const (
	// IdempotencyTTLDefault is how long idempotency keys are kept by default.
	IdempotencyTTLDefault = 24 * time.Hour
	// LeaseBlocksMaxDefault caps how many blocks one lease takes.
	LeaseBlocksMaxDefault int64 = 64
	// LeaseIdleDefault is how long an unused lease is kept.
	LeaseIdleDefault = time.Minute
	// LeasesMaxDefault caps the leases one cached sequence holds per process.
	LeasesMaxDefault = 64
	// StoreTimeoutDefault bounds store calls made for requests.
	StoreTimeoutDefault = 10 * time.Second
)

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
	if c.LeaseIdle == 0 {
		c.LeaseIdle = LeaseIdleDefault
	}
	if c.LeasesMax == 0 {
		c.LeasesMax = LeasesMaxDefault
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = StoreTimeoutDefault
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
	if c.LeaseIdle < time.Second {
		return fmt.Errorf("allot: Config.LeaseIdle must be at least 1s, got %s", c.LeaseIdle)
	}
	if c.LeasesMax < 1 {
		return fmt.Errorf("allot: Config.LeasesMax must be at least 1, got %d", c.LeasesMax)
	}
	if c.StoreTimeout < 10*time.Millisecond {
		return fmt.Errorf("allot: Config.StoreTimeout must be at least 10ms, got %s", c.StoreTimeout)
	}
	return nil
}

// Service hands out sequence numbers and pool units. It is safe for
// concurrent use, and any number of Services (in one process or many) may
// share one Store.
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

	health   storeHealth
	ledger   ledgerWork
	closed   atomic.Bool
	running  sync.WaitGroup
	bg       sync.WaitGroup
	bgMu     sync.Mutex
	bgClosed bool // no more background goroutines: Close waits for bg
	stop     chan struct{}
	stopOnce sync.Once
	// epoch is when the service started; monoNow and coarse count from
	// it on the monotonic clock, so a step of the wall clock (NTP, a VM
	// resumed) never makes a lease look idle or settings look fresh.
	epoch time.Time
	// coarse is monoNow to within coarseTick, for the in-memory path:
	// reading the clock costs more than the rest of a cached next.
	coarse atomic.Int64
	// busy are leases given back while numbers of them were out for
	// delivery; Close waits for those answers before its last flush.
	busyMu sync.Mutex
	busy   []*lease
	// handoffs counts give-backs of undelivered numbers under way; Close
	// waits for them with the busy leases.
	handoffs atomic.Int64
	// listeners are the handlers of the store's notices, by topic; set
	// before New returns, read-only after.
	listeners map[string][]func(payload string)
}

// coarseTick is how often Service.coarse is brought up to date.
const coarseTick = 20 * time.Millisecond

// coarseNow is monoNow to within coarseTick.
func (s *Service) coarseNow() int64 { return s.coarse.Load() }

// monoNow is the time since the service started, in nanoseconds, on the
// monotonic clock.
func (s *Service) monoNow() int64 { return int64(time.Since(s.epoch)) }

// goBackground runs fn on a goroutine Close waits for, unless Close has
// begun waiting, and reports whether it did.
func (s *Service) goBackground(fn func()) bool {
	s.bgMu.Lock()
	if s.bgClosed {
		s.bgMu.Unlock()
		return false
	}
	s.bg.Add(1)
	s.bgMu.Unlock()
	go func() {
		defer s.bg.Done()
		fn()
	}()
	return true
}

// New returns a Service over cfg.Store and starts its background loops.
// It does not run migrations. ctx bounds only the start (registering the
// server in the store, within StoreTimeout at most): the Service runs
// until Close, whatever becomes of ctx.
func New(ctx context.Context, cfg Config) (*Service, error) {
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
	s.health.log = cfg.Logger
	s.epoch = time.Now()
	s.coarse.Store(s.monoNow())
	s.seqs.Store(&map[string]*seqRuntime{})
	s.advance = batch.NewPipelined(s.flushAdvance, batch.Opts{Isolate: isolate, Pipeline: pipelineDepth}).OnAbandoned(s.abandonedAdvance)
	sctx, cancel := context.WithTimeout(ctx, cfg.StoreTimeout)
	defer cancel()
	if err := s.store.ServerStart(sctx, s.cfg.Owner); err != nil {
		return nil, fmt.Errorf("allot: register server: %w", err)
	}
	s.loop("purge idempotency keys", time.Hour, s.purgeKeys)
	s.loop("give back idle leases", min(5*time.Second, max(cfg.LeaseIdle/2, 100*time.Millisecond)), s.releaseIdle)
	s.loop("settle ledger entries", 100*time.Millisecond, s.flushSettles)
	s.loop("resolve lost commits", time.Second, s.resolve)
	s.loop("void expired reservations", sweepEvery, s.expireReserved)
	s.loop("report store health", storeHealthSummaryEvery, func(context.Context) error { s.health.summary(); return nil })
	s.loop("say the server is alive", ServerHeartbeat, func(ctx context.Context) error { return s.store.ServerSeen(ctx, s.cfg.Owner) })
	s.tick(coarseTick, func() { s.coarse.Store(s.monoNow()) })
	s.initPools()
	s.startListening()
	return s, nil
}

// loop runs fn every interval on its own goroutine until Close, with a
// fresh StoreTimeout-bounded context each time. An error that says the
// store is unavailable goes to the store health report (one log line per
// change of state); any other error is logged.
func (s *Service) loop(name string, every time.Duration, fn func(ctx context.Context) error) {
	s.tick(every, func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
		err := fn(ctx)
		cancel()
		s.report(name, err)
	})
}

// tick runs fn every interval on its own goroutine until Close.
func (s *Service) tick(every time.Duration, fn func()) {
	s.goBackground(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				fn()
			}
		}
	})
}

// listen registers fn for the store's notices on topic (see Notifier).
// It must be called before New returns; the store is asked once for every
// topic registered.
func (s *Service) listen(topic string, fn func(payload string)) {
	if s.listeners == nil {
		s.listeners = map[string][]func(string){}
	}
	s.listeners[topic] = append(s.listeners[topic], fn)
}

// startListening runs one listener for every registered topic, when the
// store is a Notifier, listening again a second after a failure (without
// notices, what they keep fresh expires by itself: a sold-out flag within
// a second).
func (s *Service) startListening() {
	n, ok := s.store.(Notifier)
	if !ok || len(s.listeners) == 0 {
		return
	}
	topics := make([]string, 0, len(s.listeners))
	for t := range s.listeners {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	s.goBackground(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-s.stop; cancel() }()
		for ctx.Err() == nil {
			err := n.Listen(ctx, topics, func(topic, payload string) {
				for _, fn := range s.listeners[topic] {
					fn(payload)
				}
			})
			if ctx.Err() != nil {
				return
			}
			s.report("store notices", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
}

// report sends the outcome of a store call to the health report, or logs
// an error that is not about the store's availability.
func (s *Service) report(source string, err error) {
	switch {
	case err == nil:
		s.health.ok()
	case errors.Is(err, ErrClosed):
	case unavailable(err):
		s.health.fail(source, err)
	default:
		s.log.Warn(source, "err", err)
	}
}

// unavailable reports errors that mean the store could not be reached or
// did not answer in time.
func unavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// isolate says whether a failed batch should be retried request by
// request: when the store blamed the data (ErrInvalid), one request may be
// at fault, and the others must not fail with it.
func isolate(err error) bool { return errors.Is(err, ErrInvalid) }

// pipelineDepth is how many group commits of one key may be in flight:
// two, so the next batch forms and queues for the store's lock while one
// commits (on a store that says when it holds it; see Turn).
const pipelineDepth = 2

// rerun reports a batch the store rolled back because the batch before it
// failed: it runs again, so it is neither a failure nor a batch to count.
func rerun(err error) bool { return errors.Is(err, batch.ErrPrevious) }

// Store returns the service's store.
func (s *Service) Store() Store { return s.store }

// Owner returns the name this process records in the ledger.
func (s *Service) Owner() string { return s.cfg.Owner }

// Now is the time on the Service's clock (Config.Now).
func (s *Service) Now() time.Time { return s.cfg.Now() }

// enter marks a call in progress so Close can wait for it.
func (s *Service) enter() error {
	s.running.Add(1)
	if s.closed.Load() {
		s.running.Done()
		return ErrClosed
	}
	return nil
}

// storeCtx bounds a store call made for a request by StoreTimeout.
func (s *Service) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.StoreTimeout)
}

// Close stops taking requests, waits for those in progress, and gives back
// the unused rest of every lease: handed back to the counter where nothing
// was taken after it, voided otherwise, so a graceful shutdown leaves no
// unexplained gap and wastes no numbers it can save. Only when everything
// is accounted for does it record the server as stopped (which tells the
// store the rest of its leases is issued). It returns when ctx ends at the
// latest.
func (s *Service) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stopOnce.Do(func() { close(s.stop) })
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		s.advance.Close()
		s.pl.claims.Close()
		s.pl.confirms.Close()
		s.bgMu.Lock()
		s.bgClosed = true
		s.bgMu.Unlock()
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
		if err := s.retireAll(ctx, rt, "unused rest of a lease at shutdown"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.waitBusy(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.flushSettles(ctx); err != nil {
		errs = append(errs, fmt.Errorf("settle ledger entries: %w", err))
	}
	if err := s.resolve(ctx); err != nil {
		errs = append(errs, fmt.Errorf("resolve lost commits: %w", err))
	}
	if n := s.ledger.unresolved(); n > 0 {
		errs = append(errs, fmt.Errorf("%d group commit(s) or give-backs could not be resolved: their numbers stay pending in the ledger", n))
	}
	if len(errs) == 0 {
		// Only a server whose unused numbers are all given back counts as
		// stopped: its other numbers are then known to be issued.
		if err := s.store.ServerStop(ctx, s.cfg.Owner); err != nil {
			errs = append(errs, fmt.Errorf("record stop: %w", err))
		}
	}
	return errors.Join(errs...)
}

// waitBusy waits, until ctx ends, for the answers still out of leases
// given back and for the give-backs of those not delivered, and says what
// is still under way when ctx ends first.
func (s *Service) waitBusy(ctx context.Context) error {
	for {
		s.busyMu.Lock()
		s.busy = slices.DeleteFunc(s.busy, func(l *lease) bool { return l.out.Load() == 0 })
		n := len(s.busy)
		s.busyMu.Unlock()
		h := s.handoffs.Load()
		if n == 0 && h == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d lease(s) still had numbers out for delivery and %d give-back(s) were under way: they stay pending in the ledger", n, h)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Ready checks the store; the error says why it is not ready. The
// outcome goes to the store health report, which logs an outage once
// rather than once per probe.
func (s *Service) Ready(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.store.Ping(ctx)
	if err != nil && !unavailable(err) {
		err = &UnavailableError{Store: "store", Err: err}
	}
	s.observe("readiness probe", err)
	return err
}
