package allot

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// What a server owes the ledger after the fact.
//
// Entries written by a group commit stay pending until the server knows
// what became of their numbers: issued numbers once every answer of the
// batch was delivered (or the undelivered ones given back), leases once
// every number was handed out or given back. A commit whose outcome was
// lost (the connection broke during it) is looked up again once the store
// answers, and its numbers given back: every caller of that batch was told
// it failed. A give-back the store could not take is retried. All of it is
// kept in memory only; if the process dies first, the entries stay pending
// in the ledger, where reads report them as leased and `allot audit`
// reports unanswered gapless numbers.

// ledgerWorkMax bounds what is kept for retries; past it the oldest is
// dropped (its entries stay pending, which the ledger reports truthfully).
const ledgerWorkMax = 100_000

type ledgerWork struct {
	mu        sync.Mutex
	settles   []int64
	uncertain []uncertainBatch
	returns   []SequenceReturnParams
}

// uncertainBatch is a group commit whose outcome is unknown.
type uncertainBatch struct {
	key   advanceKey
	batch int64
	reqs  []SequenceAdvanceRequest
}

func (w *ledgerWork) unresolved() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.uncertain) + len(w.returns)
}

// answerTracker counts the answers of a batch still to be delivered; the
// batch's pending entries are settled when the last one is.
type answerTracker struct {
	svc  *Service
	rows []int64
	left atomic.Int64
}

// done records one answer delivered (or given back).
func (t *answerTracker) done() {
	if t != nil && t.left.Add(-1) == 0 {
		t.svc.settle(t.rows...)
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
	for i, p := range returns {
		if err := s.store.SequenceReturn(ctx, p); err != nil {
			if !unavailable(err) {
				s.log.Error("give back numbers: dropped after an error the store will not recover from", "sequence", p.Sequence, "err", err)
				continue
			}
			w.mu.Lock()
			w.returns = append(w.returns, returns[i:]...)
			w.mu.Unlock()
			errs = append(errs, err)
			break
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
// retrying in the background if the store can't take it now.
func (s *Service) giveBack(seq, period string, spans []Span, settle []int64, reason string) {
	p := SequenceReturnParams{Sequence: seq, Owner: s.cfg.Owner, Reason: reason,
		Periods: []PeriodReturn{{Period: period, Spans: spans, Settle: settle}}}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	err := s.store.SequenceReturn(ctx, p)
	s.observe("give back numbers", err)
	if err == nil {
		return
	}
	if !unavailable(err) {
		s.log.Error("give back numbers", "sequence", seq, "period", period, "spans", spans, "err", err)
		return
	}
	w := &s.ledger
	w.mu.Lock()
	w.returns = append(w.returns, p)
	if n := len(w.returns) - ledgerWorkMax; n > 0 {
		w.returns = w.returns[n:]
	}
	w.mu.Unlock()
}

// abandonedAdvance handles the requests of a group commit whose callers
// gave up while it committed: they were answered with an error, so their
// numbers go back (a keyed request's retry replays them instead).
func (s *Service) abandonedAdvance(k advanceKey, reqs []SequenceAdvanceRequest, res []SequenceAdvanceResult) {
	for i, r := range res {
		if r.Err != nil || r.Replayed != nil {
			continue
		}
		if reqs[i].Idempotency == nil {
			s.giveBack(k.seq, k.period, []Span{{r.First, r.Last}}, nil, "request cancelled before the answer")
		}
		r.answer.done()
	}
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

// resolve looks up group commits whose outcome was lost. Those that did
// commit gave every caller an error, so their numbers go back, except
// those of keyed requests, whose retries replay them.
func (s *Service) resolve(ctx context.Context) error {
	w := &s.ledger
	w.mu.Lock()
	todo := w.uncertain
	w.uncertain = nil
	w.mu.Unlock()
	for i, u := range todo {
		if err := s.resolveOne(ctx, u); err != nil {
			w.mu.Lock()
			w.uncertain = append(w.uncertain, todo[i:]...)
			w.mu.Unlock()
			return err
		}
	}
	return nil
}

func (s *Service) resolveOne(ctx context.Context, u uncertainBatch) error {
	entries, err := s.store.SequenceBatchEntries(ctx, u.key.seq, u.key.period, u.batch)
	if err != nil || len(entries) == 0 {
		return err // nothing committed, or ask again later
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
			return err
		default:
			keep = append(keep, Span{rec.First, rec.Last})
		}
	}
	keep = MergeSpans(keep)
	var spans []Span
	var ids []int64
	for _, e := range entries {
		ids = append(ids, e.ID)
		spans = append(spans, Subtract(Span{e.First, e.Last}, keep)...)
	}
	s.log.Warn("a group commit whose answer was lost did commit: giving its numbers back", "sequence", u.key.seq,
		"period", u.key.period, "entries", len(entries), "spans", spans)
	if len(spans) == 0 {
		return s.store.SequenceSettle(ctx, ids)
	}
	return s.store.SequenceReturn(ctx, SequenceReturnParams{Sequence: u.key.seq, Owner: s.cfg.Owner,
		Reason:  "request failed before the answer (the database's reply was lost)",
		Periods: []PeriodReturn{{Period: u.key.period, Spans: spans, Settle: ids}}})
}

func (s *Service) expireReserved(ctx context.Context) error {
	_, err := s.store.SequenceExpireReserved(ctx, s.cfg.Now(), s.cfg.Owner)
	return err
}

// ExpireReservedNow voids the reserved numbers past their deadline at
// once, as the background loop does every second, and returns how many it
// voided. Tests with an injected clock use it.
func (s *Service) ExpireReservedNow(ctx context.Context) (int64, error) {
	return s.store.SequenceExpireReserved(ctx, s.cfg.Now(), s.cfg.Owner)
}

// Sync writes at once what the service owes the ledger (settles of
// answered numbers and used-up leases, give-backs to retry, lost commits
// to look up), as its background loops do every 100 ms and every second.
// Close does it too; tests call it to see a settled ledger.
func (s *Service) Sync(ctx context.Context) error {
	return errors.Join(s.flushSettles(ctx), s.resolve(ctx))
}
