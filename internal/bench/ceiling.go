package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/allot/allot"
)

// Ceiling is what the store alone does for the work of an allot target:
// the same group-commit batches, called on the Store directly (no HTTP,
// no Service), one batch in flight at a time, as the Service has per
// sequence period or pool on PostgreSQL (on SQLite the next batch is
// formed while one commits, but the commits still follow one another).
// It is the limit the HTTP figure is measured against at that batch size
// with one batch in flight (bigger batches would commit more).
type Ceiling struct {
	// Name says what was measured, e.g. "gapless numbers".
	Name string
	// Batch is the requests per batch: the mean batch the server formed.
	Batch int
	// Runs are the measured runs, each Units requests over Elapsed.
	Runs []CeilingRun
}

// CeilingRun is one measured run of a Ceiling.
type CeilingRun struct {
	// Units is how many requests the batches served.
	Units int64
	// Elapsed is how long the run took.
	Elapsed time.Duration
	// P50 and P99 are the latency of one batch.
	P50, P99 time.Duration
}

// PerSecond is the requests the run served per second.
func (r CeilingRun) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Units) / r.Elapsed.Seconds()
}

// Median returns the run with the median PerSecond (the lower of the two
// middle ones for an even count), zero for none.
func (c Ceiling) Median() CeilingRun {
	if len(c.Runs) == 0 {
		return CeilingRun{}
	}
	runs := slices.Clone(c.Runs)
	slices.SortFunc(runs, func(a, b CeilingRun) int { return cmpFloat(a.PerSecond(), b.PerSecond()) })
	return runs[(len(runs)-1)/2]
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// MeasureCeiling calls batch, which serves size requests a call, in a
// closed loop: unmeasured for warmup, then measured for d. The first error
// stops it and is returned.
func MeasureCeiling(ctx context.Context, size int, warmup, d time.Duration, batch func(context.Context) error) (CeilingRun, error) {
	if size < 1 || d <= 0 {
		return CeilingRun{}, errors.New("bench: a ceiling needs a batch size of at least 1 and a positive duration")
	}
	for end := time.Now().Add(warmup); time.Now().Before(end); {
		if err := batch(ctx); err != nil {
			return CeilingRun{}, err
		}
	}
	var lat []time.Duration
	start := time.Now()
	for end := start.Add(d); time.Now().Before(end); {
		t := time.Now()
		if err := batch(ctx); err != nil {
			return CeilingRun{}, err
		}
		lat = append(lat, time.Since(t))
	}
	r := CeilingRun{Units: int64(len(lat)) * int64(size), Elapsed: time.Since(start)}
	slices.Sort(lat)
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r, nil
}

// MeanBatchSize returns the mean of the allot_batch_size histogram for
// kind ("issued" for gapless numbers, "claim" for claims) in g, 0 when it
// has no batch of that kind.
func MeanBatchSize(g prometheus.Gatherer, kind string) (float64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != "allot_batch_size" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					if h := m.GetHistogram(); h.GetSampleCount() > 0 {
						return h.GetSampleSum() / float64(h.GetSampleCount()), nil
					}
				}
			}
		}
	}
	return 0, nil
}

// BatchOf rounds a mean batch size to the batch a ceiling runs (at
// least 1).
func BatchOf(mean float64) int { return max(1, int(math.Round(mean))) }

// AdvanceBatch returns a batch that takes size gapless numbers of
// sequence seq on st, one per request, as the Service's group commit
// does (issued, pending, in one transaction), and settles the entries
// every 100 ms as the Service's background loop does, so the ledger ends
// with every number answered. Call the returned settle once the run ends.
func AdvanceBatch(st allot.Store, seq, owner string, size int) (batch func(context.Context) error, settle func(context.Context) error) {
	reqs := make([]allot.SequenceAdvanceRequest, size)
	for i := range reqs {
		reqs[i].Count = 1
	}
	var ids []int64
	last := time.Now()
	settle = func(ctx context.Context) error {
		err := st.SequenceSettle(ctx, ids)
		ids, last = ids[:0], time.Now()
		return err
	}
	batch = func(ctx context.Context) error {
		res, err := st.SequenceAdvance(ctx, allot.SequenceAdvanceParams{Sequence: seq, Kind: allot.LedgerIssued, Owner: owner,
			Batch: rand.Int64N(math.MaxInt64-1) + 1, Pending: true, Requests: reqs})
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				return r.Err
			}
			if r.Row != 0 {
				ids = append(ids, r.Row)
			}
		}
		if time.Since(last) >= 100*time.Millisecond {
			return settle(ctx)
		}
		return nil
	}
	return batch, settle
}

// ClaimBatch returns a batch that holds one unit of pool on st for each
// of size customers never seen before, as the Service's group commit
// does.
func ClaimBatch(st allot.Store, pool string, size int, ttl time.Duration) func(context.Context) error {
	reqs := make([]allot.PoolClaimRequest, size)
	return func(ctx context.Context) error {
		for i := range reqs {
			// Random ids, as the Service makes them, so runs on one
			// database never collide and the index sees the same inserts.
			id := strconv.FormatUint(rand.Uint64(), 36)
			reqs[i] = allot.PoolClaimRequest{ID: "clm_" + id, Customer: "ceiling-" + id, Quantity: 1, TTL: ttl}
		}
		res, err := st.PoolClaim(ctx, allot.PoolClaimParams{Pool: pool, Now: time.Now(), Requests: reqs})
		if err != nil {
			return err
		}
		for _, r := range res.Results {
			if r.Err != nil {
				return r.Err
			}
		}
		return nil
	}
}

// CeilingTable renders c beside the allot target measured over HTTP (its
// median requests per second, 0 when it did not run), as markdown or as
// aligned text.
func CeilingTable(c Ceiling, target string, httpRate float64, markdown bool) string {
	m := c.Median()
	share := "-"
	if httpRate > 0 && m.PerSecond() > 0 {
		share = fmt.Sprintf("%.2f×", httpRate/m.PerSecond())
	}
	row := []string{c.Name, strconv.Itoa(c.Batch), formatRate(m.PerSecond()), formatLatency(m.P50), formatLatency(m.P99),
		target, formatRate(httpRate), share}
	head := []string{"store alone", "batch", "requests/s (median)", "batch p50", "batch p99", "over HTTP", "req/s", "HTTP ÷ store"}
	var b strings.Builder
	if markdown {
		b.WriteString("| " + strings.Join(head, " | ") + " |\n|---|--:|--:|--:|--:|---|--:|--:|\n")
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	} else {
		writeAligned(&b, [][]string{head, row})
	}
	var rates []string
	for _, r := range c.Runs {
		rates = append(rates, formatRate(r.PerSecond()))
	}
	fmt.Fprintf(&b, "\nstore alone: the same batches called on the store directly, one in flight, batch = the mean batch the server formed; runs: %s\n",
		strings.Join(rates, ", "))
	return b.String()
}
