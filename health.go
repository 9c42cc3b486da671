package allot

import (
	"log/slog"
	"sort"
	"sync"
	"time"
)

// storeHealthSummaryEvery is how often an outage is summed up in the log.
const storeHealthSummaryEvery = 30 * time.Second

// storeHealth turns the errors of an outage into a few log lines: one when
// the store becomes unavailable, one summary every
// storeHealthSummaryEvery while it stays so, and one when it answers
// again, instead of a line per failed call.
type storeHealth struct {
	log *slog.Logger

	mu       sync.Mutex
	down     bool
	since    time.Time
	failures int64            // since the last summary
	sources  map[string]int64 // since the last summary
	total    int64
	lastErr  string
}

// fail records a call that found the store unavailable.
func (h *storeHealth) fail(source string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err.Error()
	h.total++
	if !h.down {
		h.down, h.since = true, time.Now()
		h.failures, h.sources = 0, map[string]int64{}
		h.log.Warn("store unavailable: requests get 503 until it answers again", "source", source, "err", err)
		return
	}
	h.failures++
	h.sources[source]++
}

// ok records a call the store answered.
func (h *storeHealth) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return
	}
	h.log.Warn("store available again", "down_for", time.Since(h.since).Round(time.Millisecond).String(), "failed_calls", h.total)
	h.down, h.total = false, 0
}

// summary logs how an ongoing outage goes, at most once a period.
func (h *storeHealth) summary() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return
	}
	names := make([]string, 0, len(h.sources))
	for n := range h.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	attrs := []any{"down_for", time.Since(h.since).Round(time.Second).String(), "failed_calls", h.failures, "last_err", h.lastErr}
	for _, n := range names {
		attrs = append(attrs, slog.Int64("calls."+n, h.sources[n]))
	}
	h.log.Warn("store still unavailable", attrs...)
	h.failures, h.sources = 0, map[string]int64{}
}

// observe sends a request-path store outcome to the health report: an
// unavailable store is counted, an answer is noted.
func (s *Service) observe(source string, err error) {
	switch {
	case err == nil:
		s.health.ok()
	case unavailable(err):
		s.health.fail(source, err)
	}
}

// StoreDown reports whether the service currently sees its store as
// unavailable (for readiness reports and log decisions).
func (s *Service) StoreDown() bool {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.down
}
