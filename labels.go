package allot

import (
	"context"
	"errors"
	"fmt"

	"github.com/allot/allot/format"
)

// Labels: a label request issues numbers exactly as Next does (package
// label renders them), and a reprint renders numbers already issued, so
// a jammed roll can be printed again without taking new numbers. What
// this file holds is the domain side: which numbers a reprint may print,
// and the samples a renderer checks a label against before anything is
// issued.

// ReprintMax is the most labels one reprint renders.
const ReprintMax = LabelCountMax

// ReprintParams name numbers already issued, in exactly one way: a range
// of IDs (First and Last, of one period), a list of IDs, or the
// Idempotency-Key of the request that issued them.
type ReprintParams struct {
	Sequence       string
	First, Last    string
	IDs            []string
	IdempotencyKey string
	// Max, when set, refuses more numbers than that (before the ledger is
	// read); at most ReprintMax either way.
	Max int
}

// issuedSpan is numbers first..last of a period, shown with one date, for
// checkIssued; idOf renders one for a message.
type issuedSpan struct {
	period, dateKey string
	first, last     int64
	idOf            func(int64) string
}

// Reprint returns the IDs to print again, in order, once the ledger says
// every one of them was handed out (issued, confirmed, or reserved and
// awaiting its confirmation) and none was voided. Anything else fails with
// an error wrapping ErrNotIssued that names the first such number, and
// nothing is printed.
func (s *Service) Reprint(ctx context.Context, p ReprintParams) ([]string, error) {
	rt, err := s.readRuntime(ctx, p.Sequence)
	if err != nil {
		return nil, err
	}
	ways := 0
	for _, given := range []bool{p.First != "" || p.Last != "", len(p.IDs) > 0, p.IdempotencyKey != ""} {
		if given {
			ways++
		}
	}
	if ways != 1 {
		return nil, Invalidf("", "name the numbers to reprint in one way: first and last (a range of IDs), ids (a comma-separated list), or idempotency_key (the key of the request that issued them)")
	}
	limit := ReprintMax
	if p.Max > 0 {
		limit = min(limit, p.Max)
	}
	switch {
	case p.IdempotencyKey != "":
		return s.reprintKey(ctx, rt, p.IdempotencyKey, limit)
	case len(p.IDs) > 0:
		if len(p.IDs) > limit {
			return nil, Invalidf("ids", "at most %d labels in one reprint of this kind, got %d IDs", limit, len(p.IDs))
		}
		spans := make([]issuedSpan, len(p.IDs))
		for i, id := range p.IDs {
			n, d, period, err := s.decodeReprint(rt, "ids", id)
			if err != nil {
				return nil, err
			}
			spans[i] = issuedSpan{period, rt.dateKey(d), n, n, func(int64) string { return id }}
		}
		if err := s.checkIssued(ctx, rt, spans); err != nil {
			return nil, err
		}
		return p.IDs, nil
	}
	if p.First == "" || p.Last == "" {
		return nil, Invalidf("last", "a range needs both first and last (IDs); for one label give the same ID twice")
	}
	first, fd, period, err := s.decodeReprint(rt, "first", p.First)
	if err != nil {
		return nil, err
	}
	last, ld, lperiod, err := s.decodeReprint(rt, "last", p.Last)
	if err != nil {
		return nil, err
	}
	if rt.dateKey(fd) != rt.dateKey(ld) || period != lperiod {
		return nil, Invalidf("last", "%q shows another date than %q: a range is one request's numbers, of one date", p.Last, p.First)
	}
	if last < first {
		return nil, Invalidf("last", "%q comes before %q: give the range in order", p.Last, p.First)
	}
	if last-first >= int64(limit) {
		return nil, Invalidf("last", "at most %d labels in one reprint of this kind, got %d", limit, last-first+1)
	}
	return s.renderIssued(ctx, rt, period, fd, first, last)
}

// reprintKey finds the numbers the request with Idempotency-Key key
// issued.
func (s *Service) reprintKey(ctx context.Context, rt *seqRuntime, key string, limit int) ([]string, error) {
	if err := ValidateIdempotencyKey(key); err != nil {
		return nil, &InvalidError{Field: "idempotency_key", Reason: err.(*InvalidError).Reason}
	}
	rec, err := s.store.IdempotencyGet(ctx, "sequence:"+rt.seq.Name, key)
	if errors.Is(err, ErrNotFound) {
		return nil, NotFoundf("idempotency key %q of sequence %q (never used, or older than the keys are kept)", key, rt.seq.Name)
	}
	if err != nil {
		return nil, err
	}
	np := nextPlan{}
	if rec.Date != "" {
		if np.date, err = ParseDate("date", rec.Date); err != nil {
			return nil, fmt.Errorf("stored idempotency record %q: %w", key, err)
		}
	}
	if rec.Last-rec.First >= int64(limit) {
		return nil, Invalidf("idempotency_key", "the request with key %q issued %d numbers: reprint at most %d of this kind at a time, by first and last", key, rec.Last-rec.First+1, limit)
	}
	return s.renderIssued(ctx, rt, rec.Period, np.date, rec.First, rec.Last)
}

// renderIssued checks that numbers first..last of a period, shown with
// date d, were handed out, and renders them.
func (s *Service) renderIssued(ctx context.Context, rt *seqRuntime, period string, d format.Date, first, last int64) ([]string, error) {
	res, err := s.result(rt, nextPlan{date: d}, first, last-first+1, 0, 0, false)
	if err != nil {
		return nil, err
	}
	if err := s.checkIssued(ctx, rt, []issuedSpan{{period, rt.dateKey(d), first, last, func(n int64) string { return res.IDs[n-first] }}}); err != nil {
		return nil, err
	}
	return res.IDs, nil
}

// decodeReprint decodes an ID a reprint names; a wrong check character
// is bad input here, not a status.
func (s *Service) decodeReprint(rt *seqRuntime, field, id string) (int64, format.Date, string, error) {
	n, d, period, err := s.decode(rt, id)
	if err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return 0, d, "", &InvalidError{Field: field, Reason: ie.Reason}
		}
		return 0, d, "", Invalidf(field, "%q has a wrong check character: the sequence never issued it (mistyped or misread?)", id)
	}
	return n, d, period, nil
}

// checkIssued walks the ledger over every span, in one read: every
// number must lie in a taken entry whose status is issued or reserved,
// and in no voided note.
func (s *Service) checkIssued(ctx context.Context, rt *seqRuntime, spans []issuedSpan) error {
	var refused error
	err := s.store.SequenceLedgerRead(ctx, "check reprint", func(r LedgerReader) error {
		refused = nil
		for _, sp := range spans {
			if err := s.checkSpan(ctx, r, rt.seq.Name, sp); err != nil {
				if errors.Is(err, ErrNotIssued) {
					refused = err
					return nil
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return refused
}

// checkSpan is checkIssued for one span; a store error is returned as is,
// a refusal wraps ErrNotIssued.
func (s *Service) checkSpan(ctx context.Context, r LedgerReader, seq string, sp issuedSpan) error {
	// Voids never overlap, so the one with the highest first number at or
	// below last is the only one that can reach into the range.
	v, err := r.Nearest(ctx, seq, sp.period, VoidedKindSQL, sp.last)
	if err != nil {
		return err
	}
	if v != nil && v.Last >= sp.first {
		return Errorf(ErrNotIssued, "%s was voided (%s): a voided number can't be reprinted", sp.idOf(max(v.First, sp.first)), v.Reason)
	}
	for n := sp.last; n >= sp.first; {
		info := NumberInfo{}
		e, err := r.Nearest(ctx, seq, sp.period, TakenKindsSQL, n)
		if err != nil {
			return err
		}
		if e == nil || e.Last < n {
			return Errorf(ErrNotIssued, "%s was never issued: only issued numbers can be reprinted", sp.idOf(n))
		}
		info.Taken = e
		if e.Kind == LedgerLeased && e.Pending {
			live, err := r.OwnerLive(ctx, e.Owner)
			if err != nil {
				return err
			}
			info.OwnerStopped = !live
		}
		st, detail := NumberStatusOf(info, sp.dateKey)
		if st != StatusIssued && st != StatusReserved {
			return Errorf(ErrNotIssued, "%s is %s (%s): only issued numbers can be reprinted", sp.idOf(n), st, detail)
		}
		n = e.First - 1
	}
	return nil
}
