package allot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Idempotency: a key is in flight in one process at a time (keyInFlight),
// a retry must match the first request's digest, a sequence request's
// replay is built from its stored record, and records are purged after
// Config.IdempotencyTTL. The stores keep the records (IdempotencyGet,
// IdempotencyPurge) and check keys inside the transaction that uses them.

// purgeKeys deletes the records older than Config.IdempotencyTTL.
func (s *Service) purgeKeys(ctx context.Context) error {
	n, err := s.store.IdempotencyPurge(ctx, s.cfg.Now().Add(-s.cfg.IdempotencyTTL))
	if err == nil && n > 0 {
		s.log.Info("purged idempotency keys", "count", n)
	}
	return err
}

// digest is the request hash of an idempotent request: its parts, which a
// retry must repeat exactly.
func digest(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

// keyInFlight marks an idempotency key as in flight in this process, or
// fails with ErrIdempotencyInFlight if it already is.
func (s *Service) keyInFlight(idem *IdempotencyParams) (func(), error) {
	slot := idem.Scope + "\x00" + idem.Key
	if err := ValidateIdempotencyKey(idem.Key); err != nil {
		return nil, err
	}
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if _, busy := s.inflight[slot]; busy {
		return nil, Errorf(ErrIdempotencyInFlight, "key %q is in flight: its first request is still running; retry shortly", idem.Key)
	}
	s.inflight[slot] = struct{}{}
	return func() {
		s.inflightMu.Lock()
		delete(s.inflight, slot)
		s.inflightMu.Unlock()
	}, nil
}

func (s *Service) deliverReplay(p NextParams, rt *seqRuntime, rec *IdempotencyRecord, hash string) (*NextResult, error) {
	res, err := s.replay(rt, rec, hash, p.IdempotencyKey)
	if err == nil && p.Deliver != nil {
		err = p.Deliver(res)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// idempotency validates an Idempotency-Key and digests the request.
func (s *Service) idempotency(rt *seqRuntime, p NextParams, np nextPlan) (*IdempotencyParams, string, error) {
	if err := ValidateIdempotencyKey(p.IdempotencyKey); err != nil {
		return nil, "", err
	}
	text := "count=" + strconv.FormatInt(p.Count, 10) + "\x00date=" + p.Date
	if p.Reference != "" {
		text += "\x00reference=" + p.Reference
	}
	if p.ConfirmWithin != 0 {
		text += "\x00confirm_within=" + p.ConfirmWithin.String()
	}
	sum := sha256.Sum256([]byte(text))
	hash := hex.EncodeToString(sum[:])
	idem := &IdempotencyParams{Scope: "sequence:" + rt.seq.Name, Key: p.IdempotencyKey, RequestHash: hash}
	if rt.usesDate {
		idem.Date = DateString(np.date)
	}
	return idem, hash, nil
}

func (s *Service) replay(rt *seqRuntime, rec *IdempotencyRecord, hash, key string) (*NextResult, error) {
	if rec.RequestHash != hash {
		return nil, Errorf(ErrIdempotencyMismatch, "key %q was first used with a different count, date, reference or confirm_within", key)
	}
	np := nextPlan{period: rec.Period, confirmBy: rec.ConfirmBy}
	if rec.Date != "" {
		var err error
		if np.date, err = ParseDate("date", rec.Date); err != nil {
			return nil, fmt.Errorf("stored idempotency record %q: %w", key, err)
		}
	}
	return s.result(rt, np, rec.First, rec.Last-rec.First+1, 0, 0, true)
}

// ValidateIdempotencyKey checks an Idempotency-Key: 1 to 255 printable
// ASCII characters.
func ValidateIdempotencyKey(key string) error {
	if len(key) > 255 {
		return Invalidf("Idempotency-Key", "must be at most 255 characters, got %d", len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return Invalidf("Idempotency-Key", "must be printable ASCII (a UUID is a good choice)")
		}
	}
	return nil
}

// IdempotencyParams identify a request made with an Idempotency-Key.
type IdempotencyParams struct {
	// Scope namespaces the key, e.g. "sequence:invoices".
	Scope string
	// Key is the client's Idempotency-Key.
	Key string
	// RequestHash is a digest of the request body; a retry must match it.
	RequestHash string
	// Date is the document date the IDs were rendered with (YYYY-MM-DD),
	// kept so a replay renders the same IDs on a later day.
	Date string
}

// IdempotencyRecord is a stored outcome of a request made with an
// Idempotency-Key.
type IdempotencyRecord struct {
	Scope       string
	Key         string
	RequestHash string
	// Period, Date, First and Last are the outcome of a sequence request;
	// ConfirmBy the deadline of reserved numbers.
	Period    string
	Date      string
	First     int64
	Last      int64
	ConfirmBy *time.Time
	// Result is the outcome of a pool request: the claim's id.
	Result    string
	CreatedAt time.Time
}
