package allot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// What a server owes the ledger after the fact.
//
// Entries written by a group commit stay pending until the server knows
// what became of their numbers: an issued entry once every answer of the
// requests it holds was delivered (or the undelivered numbers given back),
// a lease once every number was delivered or given back. A commit whose
// outcome was lost (the connection broke during it) is looked up again
// once the store answers, and its numbers given back: every caller of that
// batch was told it failed. A give-back the store could not take is
// retried; every give-back names the entry its numbers were taken in, so a
// retry of one that did go through changes nothing. All of it is kept in
// memory only; if the process dies first, the entries stay pending in the
// ledger, where reads report them as leased and `allot audit` reports
// unanswered gapless numbers.

// ledgerWorkMax bounds what is kept for retries; past it the oldest is
// dropped (its entries stay pending, which the ledger reports truthfully).
const ledgerWorkMax = 100_000

type ledgerWork struct {
	mu        sync.Mutex
	settles   []int64
	uncertain []uncertainBatch
	returns   []pendingReturn
	// dropped counts give-backs the store refused for good: their numbers
	// stay pending, so this server must not record a clean stop (which
	// would count them as issued).
	dropped int
}

// pendingReturn is a give-back to retry, and what to do once it is done.
type pendingReturn struct {
	p      SequenceReturnParams
	onDone func()
}

// uncertainBatch is a group commit whose outcome is unknown.
type uncertainBatch struct {
	key   advanceKey
	batch int64
	reqs  []SequenceAdvanceRequest
	empty int // lookups that found nothing yet
}

func (w *ledgerWork) unresolved() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.uncertain) + len(w.returns) + w.dropped
}

// dropReturn records a give-back the store refused for good.
func (s *Service) dropReturn(p SequenceReturnParams, err error) {
	s.ledger.mu.Lock()
	s.ledger.dropped++
	s.ledger.mu.Unlock()
	s.log.Error("give back numbers: refused by the store (the entries stay pending, read as leased or unanswered)",
		"sequence", p.Sequence, "err", err)
}

// answerTracker counts the answers still to be delivered of the requests
// whose numbers one pending issued entry holds; the entry is settled when
// the last one is.
type answerTracker struct {
	svc  *Service
	row  int64
	left atomic.Int64
}

// done records one answer delivered, or its numbers given back.
func (t *answerTracker) done() {
	if t != nil && t.left.Add(-1) == 0 {
		t.svc.settle(t.row)
	}
}

// settle queues entries to be marked settled by the next flush.
func (s *Service) settle(ids ...int64) {
	if len(ids) == 0 {
		return
	}
	w := &s.ledger
	w.mu.Lock()
	w.settles = append(w.settles, ids...)
	if n := len(w.settles) - ledgerWorkMax; n > 0 {
		w.settles = w.settles[n:]
	}
	w.mu.Unlock()
}

// flushSettles writes the queued settles and retries failed give-backs.
func (s *Service) flushSettles(ctx context.Context) error {
	w := &s.ledger
	w.mu.Lock()
	ids, returns := w.settles, w.returns
	w.settles, w.returns = nil, nil
	w.mu.Unlock()
	var errs []error
	for i, r := range returns {
		if err := s.returnNumbers(ctx, r.p); err != nil {
			if !unavailable(err) {
				s.dropReturn(r.p, err)
				continue
			}
			w.mu.Lock()
			w.returns = append(w.returns, returns[i:]...)
			w.mu.Unlock()
			errs = append(errs, err)
			break
		}
		if r.onDone != nil {
			r.onDone()
		}
	}
	if len(ids) > 0 {
		if err := s.store.SequenceSettle(ctx, ids); err != nil {
			w.mu.Lock()
			w.settles = append(ids, w.settles...)
			w.mu.Unlock()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// giveBack returns numbers this server took and did not deliver (handed
// back to the counter where possible, voided with reason otherwise),
// retrying in the background if the store can't take it now; onDone (if
// set) runs once it is done.
func (s *Service) giveBack(seq, period string, spans []ReturnSpan, settle []int64, reason string, onDone func()) {
	s.giveBackAll(SequenceReturnParams{Sequence: seq, Owner: s.cfg.Owner, Reason: reason,
		Periods: []PeriodReturn{{Period: period, Spans: spans, Settle: settle}}}, onDone)
}

func (s *Service) giveBackAll(p SequenceReturnParams, onDone func()) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	err := s.returnNumbers(ctx, p)
	s.observe("give back numbers", err)
	switch {
	case err == nil:
		if onDone != nil {
			onDone()
		}
	case unavailable(err):
		s.queueReturn(p, onDone)
	default:
		s.dropReturn(p, err)
	}
}

// queueReturn keeps a give-back for the background loop to retry.
func (s *Service) queueReturn(p SequenceReturnParams, onDone func()) {
	w := &s.ledger
	w.mu.Lock()
	w.returns = append(w.returns, pendingReturn{p: p, onDone: onDone})
	if n := len(w.returns) - ledgerWorkMax; n > 0 {
		w.returns = w.returns[n:]
	}
	w.mu.Unlock()
}

// abandonedAdvance handles the requests of a group commit whose callers
// gave up while it committed: they were answered with an error, so their
// numbers go back (a keyed request's retry replays them instead), in one
// give-back for the whole batch. It runs on the batch's writer, before the
// next batch of the same sequence and period takes numbers: the numbers
// are still the last ones taken, so they go back to the counter rather
// than being voided (which for a gapless sequence would be a gap). If the
// store can't take it now, it is retried in the background.
func (s *Service) abandonedAdvance(k advanceKey, reqs []SequenceAdvanceRequest, res []SequenceAdvanceResult) {
	var spans []ReturnSpan
	var settle []int64
	var answers []*answerTracker
	for i, r := range res {
		if r.Err != nil || r.Replayed != nil {
			continue
		}
		if reqs[i].Idempotency != nil {
			r.answer.done()
			continue
		}
		spans = append(spans, ReturnSpan{Span{r.First, r.Last}, r.Row})
		if k.kind == LedgerLeased {
			settle = append(settle, r.Row)
		}
		answers = append(answers, r.answer)
	}
	if len(spans) == 0 {
		return
	}
	s.giveBack(k.seq, k.period, spans, settle, ReasonCancelled, func() {
		for _, a := range answers {
			a.done()
		}
	})
}

// resolveLater remembers a group commit whose outcome was lost.
func (s *Service) resolveLater(k advanceKey, batch int64, reqs []SequenceAdvanceRequest) {
	w := &s.ledger
	w.mu.Lock()
	w.uncertain = append(w.uncertain, uncertainBatch{key: k, batch: batch, reqs: slices.Clone(reqs)})
	if n := len(w.uncertain) - ledgerWorkMax; n > 0 {
		w.uncertain = w.uncertain[n:]
	}
	w.mu.Unlock()
}

// resolveLookups is how many times a lost commit is looked up and found
// missing before it counts as never committed (a commit can become
// visible late, e.g. after a synchronous standby's wait was cut short).
const resolveLookups = 3

// resolve looks up group commits whose outcome was lost. Those that did
// commit gave every caller an error, so their numbers go back, except
// those of keyed requests, whose retries replay them.
func (s *Service) resolve(ctx context.Context) error {
	w := &s.ledger
	w.mu.Lock()
	todo := w.uncertain
	w.uncertain = nil
	w.mu.Unlock()
	var again []uncertainBatch
	var err error
	for i := range todo {
		var done bool
		if done, err = s.resolveOne(ctx, &todo[i]); err != nil {
			again = append(again, todo[i:]...)
			break
		}
		if !done {
			again = append(again, todo[i])
		}
	}
	w.mu.Lock()
	w.uncertain = append(w.uncertain, again...)
	w.mu.Unlock()
	return err
}

func (s *Service) resolveOne(ctx context.Context, u *uncertainBatch) (done bool, err error) {
	var entries []LedgerEntry
	err = s.store.SequenceLedgerRead(ctx, "read ledger", func(r LedgerReader) (err error) {
		entries, err = r.BatchEntries(ctx, u.key.seq, u.key.period, u.batch)
		return err
	})
	if err != nil {
		return false, err
	}
	if len(entries) == 0 {
		u.empty++
		return u.empty >= resolveLookups, nil
	}
	var keep []Span
	for _, r := range u.reqs {
		if r.Idempotency == nil {
			continue
		}
		rec, err := s.store.IdempotencyGet(ctx, r.Idempotency.Scope, r.Idempotency.Key)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return false, err
		default:
			keep = append(keep, Span{rec.First, rec.Last})
		}
	}
	keep = MergeSpans(keep)
	var spans []ReturnSpan
	var ids []int64
	for _, e := range entries {
		ids = append(ids, e.ID)
		for _, g := range Subtract(Span{e.First, e.Last}, keep) {
			spans = append(spans, ReturnSpan{g, e.ID})
		}
	}
	s.log.Warn("a group commit whose answer was lost did commit: giving its numbers back", "sequence", u.key.seq,
		"period", u.key.period, "entries", len(entries), "spans", len(spans))
	if len(spans) == 0 {
		return true, s.store.SequenceSettle(ctx, ids)
	}
	return true, s.returnNumbers(ctx, SequenceReturnParams{Sequence: u.key.seq, Owner: s.cfg.Owner,
		Reason:  "request failed before the answer (the database's reply was lost)",
		Periods: []PeriodReturn{{Period: u.key.period, Spans: spans, Settle: ids}}})
}

func (s *Service) expireReserved(ctx context.Context) error {
	_, err := expireReserved(ctx, s.store, s.cfg.Now(), s.cfg.Owner)
	return err
}

// returnNumbers gives numbers back in one ledger transaction (see
// returnTx); its errors name the sequence and why they were given back.
func (s *Service) returnNumbers(ctx context.Context, p SequenceReturnParams) error {
	return s.store.SequenceLedgerTx(ctx, fmt.Sprintf("give back numbers of %q (%s)", p.Sequence, p.Reason),
		func(tx LedgerTx) error { return returnTx(ctx, tx, p) })
}

// ExpireReservedNow voids the reserved numbers past their deadline at
// once, as the background loop does every half second, and returns how
// many it voided. Tests with an injected clock use it.
func (s *Service) ExpireReservedNow(ctx context.Context) (int64, error) {
	return expireReserved(ctx, s.store, s.cfg.Now(), s.cfg.Owner)
}

// Sync writes at once what the service owes the ledger (settles of
// answered numbers and used-up leases, give-backs to retry, lost commits
// to look up), as its background loops do every 100 ms and every second.
// Close does it too; tests call it to see a settled ledger.
func (s *Service) Sync(ctx context.Context) error {
	return errors.Join(s.flushSettles(ctx), s.resolve(ctx))
}
