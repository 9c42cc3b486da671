package allot

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/allot/allot/batch"
)

// Pools.
//
// Claims on one pool are group-committed: concurrent claims share one
// transaction, decided in arrival order by the store. In front of the
// batches sits a chain of Admissions (see Admission): the built-in
// sold-out cache, then Config.Admissions.

// sweepEvery is how often each process expires holds; with the sweep's own
// duration it keeps units coming back well within SweepBound.
const sweepEvery = 500 * time.Millisecond

// poolConfigTTL bounds how long a process uses a pool's cached settings
// (max_quantity, hold_ttl) before reading them again.
const poolConfigTTL = time.Second

// poolRuntime caches a pool's settings.
type poolRuntime struct {
	mu       sync.Mutex
	pool     *Pool
	loadedAt time.Time
}

type claimBatchResult struct {
	out       PoolClaimOutcome
	available int64
}

type poolState struct {
	pools    sync.Map // name -> *poolRuntime
	adm      admissions
	claims   *batch.Batcher[string, PoolClaimRequest, claimBatchResult]
	confirms *batch.Batcher[struct{}, ClaimConfirmRequest, *Claim]
}

func (s *Service) initPools() {
	s.pl.adm = append(admissions{&soldOutCache{now: s.cfg.Now}}, s.cfg.Admissions...)
	s.pl.claims = batch.NewPipelined(s.flushClaims, batch.Opts{MaxBatch: 512, Isolate: isolate, Pipeline: pipelineDepth}).OnDropped(func(pool string, r PoolClaimRequest, err error) {
		s.pl.adm.notSent(pool, r, err) // its caller gave up while it queued
	})
	// Confirms share one batch across pools: each is a compare-and-set
	// on its own claim, and one statement updates every pool row once.
	s.pl.confirms = batch.New(func(ctx context.Context, _ struct{}, reqs []ClaimConfirmRequest) ([]*Claim, error) {
		ctx, cancel := s.storeCtx(ctx)
		defer cancel()
		start := time.Now()
		out, err := s.store.ClaimConfirmBatch(ctx, s.now(), reqs)
		s.cfg.Metrics.Observe(BatchEvent{Kind: "confirm", Size: len(reqs), Duration: time.Since(start), Err: err})
		s.observe("confirm batch", err)
		return out, err
	}, batch.Opts{MaxBatch: 512, Isolate: isolate})
	s.loop("expire holds", sweepEvery, func(ctx context.Context) error {
		err := s.SweepNow(ctx)
		if err == nil {
			s.health.ok() // the sweeper doubles as the store's probe
		}
		return err
	})
	s.listen(TopicPoolReturned, s.pl.adm.returned)
}

func (s *Service) poolRuntime(name string) *poolRuntime {
	if v, ok := s.pl.pools.Load(name); ok {
		return v.(*poolRuntime)
	}
	v, _ := s.pl.pools.LoadOrStore(name, &poolRuntime{})
	return v.(*poolRuntime)
}

// poolConfig returns the pool's settings, cached for poolConfigTTL.
func (s *Service) poolConfig(ctx context.Context, name string) (*Pool, *poolRuntime, error) {
	if err := ValidateName("pool", name); err != nil {
		return nil, nil, NotFoundf("pool %q", name)
	}
	pr := s.poolRuntime(name)
	now := time.Now()
	pr.mu.Lock()
	p, at := pr.pool, pr.loadedAt
	pr.mu.Unlock()
	if p != nil && now.Sub(at) < poolConfigTTL {
		return p, pr, nil
	}
	st, err := s.store.PoolGet(ctx, name, s.cfg.Now())
	if err != nil {
		return nil, nil, err
	}
	pr.mu.Lock()
	pr.pool, pr.loadedAt = &st.Pool, now
	pr.mu.Unlock()
	return &st.Pool, pr, nil
}

// now is the service clock at the stores' precision (microseconds), so a
// claim reads the same in the answer that created it and in later reads.
func (s *Service) now() time.Time { return s.cfg.Now().Truncate(time.Microsecond) }

// SweepNow expires holds past their expiry at once, as the sweeper does
// every half second. Tests with an injected clock use it.
func (s *Service) SweepNow(ctx context.Context) error {
	pools, err := s.store.PoolExpire(ctx, s.cfg.Now(), s.cfg.Owner)
	for _, p := range pools {
		s.pl.adm.returned(p)
	}
	return err
}

// flushClaims sends a batch to the store, less what the admissions refuse
// from memory, and tells them what became of it.
func (s *Service) flushClaims(ctx context.Context, pool string, reqs []PoolClaimRequest, turn batch.Turn) ([]claimBatchResult, error) {
	refused := make([]error, len(reqs))
	marks := s.pl.adm.flush(pool, reqs, refused)
	d := Decision{Requests: reqs, Results: make([]PoolClaimOutcome, len(reqs))}
	var sent []PoolClaimRequest
	var at []int
	for i, r := range reqs {
		if refused[i] != nil {
			d.Results[i].Err = refused[i]
			continue
		}
		sent, at = append(sent, r), append(at, i)
	}
	if len(sent) > 0 {
		res, err := s.claimBatch(ctx, pool, sent, turn)
		if err != nil {
			if len(reqs) > 1 && isolate(err) || rerun(err) {
				// Nothing was written, and the batcher now flushes
				// each claim alone, or this batch again: those flushes
				// report them.
				return nil, err
			}
			d.Err = err
			s.pl.adm.decided(pool, marks, d)
			return nil, err
		}
		d.Stored, d.Available = true, res.Available
		for j, i := range at {
			d.Results[i] = res.Results[j]
		}
	}
	s.pl.adm.decided(pool, marks, d)
	out := make([]claimBatchResult, len(reqs))
	for i, r := range d.Results {
		out[i] = claimBatchResult{out: r, available: d.Available}
	}
	return out, nil
}

// claimBatch is one store call for a batch of claims.
func (s *Service) claimBatch(ctx context.Context, pool string, reqs []PoolClaimRequest, turn batch.Turn) (*PoolClaimResult, error) {
	ctx, cancel := s.storeCtx(ctx)
	defer cancel()
	start := time.Now()
	res, err := s.store.PoolClaim(ctx, PoolClaimParams{Pool: pool, Now: s.now(), Requests: reqs, Turn: turn})
	if rerun(err) {
		return nil, err
	}
	s.cfg.Metrics.Observe(BatchEvent{Kind: "claim", Size: len(reqs), Duration: time.Since(start), Err: err})
	s.observe("claim batch", err)
	return res, err
}

// PoolCreate validates params, fills defaults and stores a new pool.
func (s *Service) PoolCreate(ctx context.Context, p PoolCreateParams) (*PoolState, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	pl, err := NewPool(p)
	if err != nil {
		return nil, err
	}
	return s.store.PoolCreate(ctx, pl)
}

// PoolGet returns a pool with its figures.
func (s *Service) PoolGet(ctx context.Context, name string) (*PoolState, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := ValidateName("pool", name); err != nil {
		return nil, NotFoundf("pool %q", name)
	}
	return s.store.PoolGet(ctx, name, s.cfg.Now())
}

// PoolList returns every pool with its figures.
func (s *Service) PoolList(ctx context.Context) ([]*PoolState, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.store.PoolList(ctx, s.cfg.Now())
}

// PoolPatch changes a pool's settings.
func (s *Service) PoolPatch(ctx context.Context, name string, p PoolPatchParams) (*PoolState, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	if p == (PoolPatchParams{}) {
		return nil, Invalidf("", "nothing to change: give capacity, per_customer, hold_ttl, max_hold_ttl, max_quantity, state, opens_at or closes_at")
	}
	cur, err := s.PoolGet(ctx, name)
	if err != nil {
		return nil, err
	}
	next := cur.Pool
	if p.Capacity != nil {
		next.Capacity = *p.Capacity
	}
	if p.PerCustomer != nil {
		next.PerCustomer = *p.PerCustomer
	}
	if p.HoldTTL != nil {
		next.HoldTTL = *p.HoldTTL
	}
	if p.MaxHoldTTL != nil {
		next.MaxHoldTTL = *p.MaxHoldTTL
	}
	if p.MaxQuantity != nil {
		next.MaxQuantity = *p.MaxQuantity
	}
	if p.State != "" {
		next.State = p.State
	}
	if p.OpensAt != nil {
		next.OpensAt = p.OpensAt
	}
	if p.ClosesAt != nil {
		next.ClosesAt = p.ClosesAt
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	st, err := s.store.PoolUpdate(ctx, name, p, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	pr := s.poolRuntime(name)
	pr.mu.Lock()
	pr.pool, pr.loadedAt = &st.Pool, time.Now()
	pr.mu.Unlock()
	s.pl.adm.returned(name)
	return st, nil
}

var claimIDEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newClaimID returns a random claim id such as "clm_5x3k…" (80 random bits).
func newClaimID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "clm_" + claimIDEncoding.EncodeToString(b[:])
}

// ClaimCreate asks for units of a pool. It returns the claim and whether
// it is a replay of an earlier request with the same Idempotency-Key.
func (s *Service) ClaimCreate(ctx context.Context, p ClaimCreateParams) (*Claim, bool, error) {
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	defer s.running.Done()
	if p.Quantity == 0 {
		p.Quantity = 1
	}
	if err := ValidateCustomer(p.Customer); err != nil {
		return nil, false, err
	}
	pl, _, err := s.poolConfig(ctx, p.Pool)
	if err != nil {
		return nil, false, err
	}
	if p.Quantity < 1 || p.Quantity > pl.MaxQuantity {
		return nil, false, Invalidf("quantity", "must be between 1 and %d (the pool's max_quantity), got %d", pl.MaxQuantity, p.Quantity)
	}
	ttl := time.Duration(pl.HoldTTL)
	if p.TTL != nil {
		ttl = time.Duration(*p.TTL)
		if ttl < time.Second || ttl > time.Duration(pl.MaxHoldTTL) {
			return nil, false, Invalidf("ttl", "must be between 1s and the pool's max_hold_ttl (%s), got %s", time.Duration(pl.MaxHoldTTL), ttl)
		}
	}
	req := PoolClaimRequest{ID: newClaimID(), Customer: p.Customer, Quantity: p.Quantity, TTL: ttl}
	if p.IdempotencyKey != "" {
		tc := ""
		if p.TTL != nil {
			tc = time.Duration(*p.TTL).String()
		}
		req.Idempotency = &IdempotencyParams{Scope: "pool:" + p.Pool + ":claim", Key: p.IdempotencyKey,
			RequestHash: digest(p.Customer, strconv.FormatInt(p.Quantity, 10), tc)}
		release, err := s.keyInFlight(req.Idempotency)
		if err != nil {
			return nil, false, err
		}
		defer release()
	}
	// The admissions (the sold-out cache first) may refuse before the
	// store is asked.
	if err := s.pl.adm.admit(ctx, p.Pool, req); err != nil {
		s.observeClaim(p.Pool, outcomeName(err))
		return nil, false, err
	}
	return s.claimDo(ctx, p.Pool, req)
}

func (s *Service) claimDo(ctx context.Context, pool string, req PoolClaimRequest) (*Claim, bool, error) {
	r, err := s.pl.claims.Do(ctx, pool, req)
	if err != nil {
		if errors.Is(err, batch.ErrClosed) {
			// Refused before it queued: no batch will report it.
			s.pl.adm.notSent(pool, req, ErrClosed)
			return nil, false, ErrClosed
		}
		return nil, false, err
	}
	if r.out.Err != nil {
		s.observeClaim(pool, outcomeName(r.out.Err))
		if errors.Is(r.out.Err, ErrPoolClosed) {
			if pl, _, err := s.poolConfig(ctx, pool); err == nil {
				if ok, why := pl.Selling(s.cfg.Now()); !ok {
					return nil, false, &PoolClosedError{Pool: pool, Why: why}
				}
			}
		}
		return nil, false, r.out.Err
	}
	if req.Idempotency != nil && s.cfg.Failpoint != nil {
		s.cfg.Failpoint(FailpointAfterCommit)
	}
	if r.out.Replayed {
		return r.out.Claim.Effective(s.cfg.Now()), true, nil
	}
	s.observeClaim(pool, "held")
	return r.out.Claim, false, nil
}

func (s *Service) observeClaim(pool, outcome string) {
	s.cfg.Metrics.Observe(ClaimEvent{Pool: pool, Outcome: outcome})
}

func outcomeName(err error) string {
	switch {
	case errors.Is(err, ErrSoldOut):
		return "sold_out"
	case errors.Is(err, ErrCustomerLimit):
		return "customer_limit"
	case errors.Is(err, ErrPoolClosed):
		return "pool_closed"
	case errors.Is(err, ErrIdempotencyMismatch):
		return "idempotency_mismatch"
	case errors.Is(err, ErrNotAdmitted):
		return "not_admitted"
	}
	return "error"
}

// ClaimGet returns a claim; a hold past expiry reads as expired.
func (s *Service) ClaimGet(ctx context.Context, id string) (*Claim, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if !validClaimID(id) {
		return nil, NotFoundf("claim %q", id)
	}
	c, err := s.store.ClaimGet(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.Effective(s.cfg.Now()), nil
}

// ClaimList lists a pool's claims, filtered by customer and status.
func (s *Service) ClaimList(ctx context.Context, p ClaimListParams) (*ClaimPage, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if _, err := s.PoolGet(ctx, p.Pool); err != nil {
		return nil, err
	}
	switch p.Status {
	case "", ClaimHeld, ClaimConfirmed, ClaimReleased, ClaimExpired, ClaimCancelled:
	default:
		return nil, Invalidf("status", "%q is not a status: use held, confirmed, released, expired or cancelled", p.Status)
	}
	if p.Customer != "" {
		if err := ValidateCustomer(p.Customer); err != nil {
			return nil, err
		}
	}
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, Invalidf("limit", "must be between 1 and 1000, got %d", p.Limit)
	}
	var after int64
	if p.After != "" {
		v, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil || v < 0 {
			return nil, Invalidf("after", "%q is not a cursor: pass the next value of the previous page", p.After)
		}
		after = v
	}
	now := s.cfg.Now()
	lp := p
	lp.Limit = p.Limit + 1
	claims, err := s.store.ClaimList(ctx, lp, after, now)
	if err != nil {
		return nil, err
	}
	page := &ClaimPage{Claims: claims}
	if len(claims) > p.Limit {
		page.Claims = claims[:p.Limit]
		page.Next = strconv.FormatInt(claims[p.Limit-1].Seq, 10)
	}
	for i, c := range page.Claims {
		page.Claims[i] = c.Effective(now)
	}
	if page.Claims == nil {
		page.Claims = []*Claim{}
	}
	return page, nil
}

// ClaimTransition confirms, releases, extends or cancels a claim. Every
// transition is a compare-and-set on the claim's status; a terminal claim
// never changes. A late confirm (of an expired hold) succeeds only if the
// units can be taken again; otherwise it fails with ErrClaimExpired. A
// cancel undoes a confirmed claim (a refund): its units come back. A retry
// that finds the transition already made (a confirm with the same
// reference, a release, a cancel with the same reason) is a replay, with
// or without an Idempotency-Key.
func (s *Service) ClaimTransition(ctx context.Context, p ClaimTransitionParams) (*Claim, bool, error) {
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	defer s.running.Done()
	if !validClaimID(p.ID) {
		return nil, false, NotFoundf("claim %q", p.ID)
	}
	sp := ClaimTransitionStoreParams{ID: p.ID, Action: p.Action, Now: s.now(), Reference: p.Reference}
	switch p.Action {
	case ActionConfirm:
		if err := ValidateLabel("reference", p.Reference, 500); err != nil {
			return nil, false, err
		}
	case ActionCancel:
		if p.Reason == "" {
			return nil, false, Invalidf("reason", "is required: say why the purchase is cancelled (e.g. \"refunded: order 8812\")")
		}
		if err := ValidateLabel("reason", p.Reason, 1000); err != nil {
			return nil, false, err
		}
		sp.Reference = p.Reason
	case ActionRelease:
	case ActionExtend:
		if p.TTL == nil {
			return nil, false, Invalidf("ttl", "is required: how long the hold should last from now, e.g. \"5m\"")
		}
		sp.TTL = time.Duration(*p.TTL)
		if sp.TTL < time.Second {
			return nil, false, Invalidf("ttl", "must be at least 1s, got %s", sp.TTL)
		}
	default:
		return nil, false, Invalidf("action", "%q is not an action: use confirm, release, extend or cancel", p.Action)
	}
	if p.IdempotencyKey != "" {
		ttl := ""
		if p.TTL != nil {
			ttl = time.Duration(*p.TTL).String()
		}
		sp.Idempotency = &IdempotencyParams{Scope: "claim:" + p.ID + ":" + string(p.Action), Key: p.IdempotencyKey,
			RequestHash: digest(sp.Reference, ttl)}
		release, err := s.keyInFlight(sp.Idempotency)
		if err != nil {
			return nil, false, err
		}
		defer release()
	}
	if p.Action == ActionConfirm && sp.Idempotency == nil {
		// The common confirm, of a live hold, is group-committed. Anything
		// else (expired, terminal, unknown) takes the exact path below.
		c, err := s.pl.confirms.Do(ctx, struct{}{}, ClaimConfirmRequest{ID: p.ID, Reference: p.Reference})
		if err != nil {
			if errors.Is(err, batch.ErrClosed) {
				return nil, false, ErrClosed
			}
			return nil, false, err
		}
		if c != nil {
			return c, false, nil
		}
	}
	c, err := s.store.ClaimTransition(ctx, sp)
	if err != nil {
		return nil, false, err
	}
	if sp.Idempotency != nil && s.cfg.Failpoint != nil {
		s.cfg.Failpoint(FailpointAfterCommit)
	}
	if p.Action == ActionRelease || p.Action == ActionCancel {
		s.pl.adm.returned(c.Pool)
	}
	// A replay is reported by the store as the claim's current state.
	return c.Effective(s.cfg.Now()), c.Replayed, nil
}

// Audit checks every invariant against the database.
func (s *Service) Audit(ctx context.Context) ([]AuditCheck, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.store.Audit(ctx, s.cfg.Now())
}
