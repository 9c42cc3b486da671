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
	switch {
	case p.IdempotencyKey != "":
		return s.reprintKey(ctx, rt, p.IdempotencyKey)
	case len(p.IDs) > 0:
		if len(p.IDs) > ReprintMax {
			return nil, Invalidf("ids", "at most %d IDs in one reprint, got %d", ReprintMax, len(p.IDs))
		}
		for i, id := range p.IDs {
			n, d, period, err := s.decodeReprint(rt, "ids", id)
			if err != nil {
				return nil, err
			}
			if err := s.checkIssued(ctx, rt, period, rt.dateKey(d), n, n, func(int64) string { return p.IDs[i] }); err != nil {
				return nil, err
			}
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
	if last-first >= ReprintMax {
		return nil, Invalidf("last", "at most %d labels in one reprint, got %d", ReprintMax, last-first+1)
	}
	return s.renderIssued(ctx, rt, period, fd, first, last)
}

// reprintKey finds the numbers the request with Idempotency-Key key
// issued.
func (s *Service) reprintKey(ctx context.Context, rt *seqRuntime, key string) ([]string, error) {
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
	if rec.Last-rec.First >= ReprintMax {
		return nil, Invalidf("idempotency_key", "the request with key %q issued %d numbers: reprint at most %d at a time, by first and last", key, rec.Last-rec.First+1, ReprintMax)
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
	if err := s.checkIssued(ctx, rt, period, rt.dateKey(d), first, last, func(n int64) string { return res.IDs[n-first] }); err != nil {
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

// checkIssued walks the ledger from last down to first: every number must
// lie in a taken entry whose status is issued or reserved, and in no
// voided note. idOf renders a number for a message.
func (s *Service) checkIssued(ctx context.Context, rt *seqRuntime, period, dateKey string, first, last int64, idOf func(int64) string) error {
	var refused error
	err := s.store.SequenceLedgerRead(ctx, "check reprint", func(r LedgerReader) error {
		refused = nil
		// Voids never overlap, so the one with the highest first number at
		// or below last is the only one that can reach into the range.
		v, err := r.Nearest(ctx, rt.seq.Name, period, VoidedKindSQL, last)
		if err != nil {
			return err
		}
		if v != nil && v.Last >= first {
			refused = Errorf(ErrNotIssued, "%s was voided (%s): a voided number can't be reprinted", idOf(max(v.First, first)), v.Reason)
			return nil
		}
		for n := last; n >= first; {
			info := NumberInfo{}
			e, err := r.Nearest(ctx, rt.seq.Name, period, TakenKindsSQL, n)
			if err != nil {
				return err
			}
			if e == nil || e.Last < n {
				refused = Errorf(ErrNotIssued, "%s was never issued: only issued numbers can be reprinted", idOf(n))
				return nil
			}
			info.Taken = e
			if e.Kind == LedgerLeased && e.Pending {
				live, err := r.OwnerLive(ctx, e.Owner)
				if err != nil {
					return err
				}
				info.OwnerStopped = !live
			}
			st, detail := NumberStatusOf(info, dateKey)
			if st != StatusIssued && st != StatusReserved {
				refused = Errorf(ErrNotIssued, "%s is %s (%s): only issued numbers can be reprinted", idOf(n), st, detail)
				return nil
			}
			n = e.First - 1
		}
		return nil
	})
	if err != nil {
		return err
	}
	return refused
}
