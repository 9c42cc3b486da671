package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The access log of 4xx and 5xx responses is rate-limited per (route,
// status): a token bucket of errLogRate lines per second with a burst of
// errLogBurst. Responses beyond it are counted, and one summary line per
// (route, status) reports the count at most every errLogSummary.
const (
	errLogRate    = 5
	errLogBurst   = 20
	errLogSummary = 10 * time.Second
	// errLogSweep is how often the request path looks for summaries
	// that are due.
	errLogSweep = time.Second
)

// errorLog writes the Info access log of error responses. It has no
// goroutine of its own: the summaries of suppressed lines are written
// from the request path, by the first response (of any route) once one
// is due.
type errorLog struct {
	log   *slog.Logger
	epoch time.Time // times are nanoseconds since epoch, on the monotonic clock

	// The limits, in nanoseconds; fixed before the first request (tests
	// change them).
	interval  int64 // between two tokens
	tolerance int64 // (burst-1) * interval
	summary   int64 // between two summaries of one (route, status)
	sweep     int64 // between two looks for summaries due

	pending   atomic.Bool  // some limiter has suppressed lines not yet summarised
	nextSweep atomic.Int64 // no look for summaries before this time

	mu  sync.Mutex
	all []*errLimiter // every limiter, for the summaries; guarded by mu
}

func newErrorLog(log *slog.Logger) *errorLog {
	el := &errorLog{log: log, epoch: time.Now()}
	el.setLimits(time.Second/errLogRate, errLogBurst, errLogSummary, errLogSweep)
	return el
}

// setLimits sets the interval between two tokens, the burst and the
// intervals of the summaries. Call it before the first request.
func (el *errorLog) setLimits(interval time.Duration, burst int, summary, sweep time.Duration) {
	el.interval = int64(interval)
	el.tolerance = int64(burst-1) * el.interval
	el.summary = int64(summary)
	el.sweep = int64(sweep)
}

// errLimiter is the token bucket of one (route, status), kept as a
// generic cell rate algorithm: one atomic "theoretical arrival time"
// instead of a token count and a refill time, so taking a token is a
// load and a compare-and-swap, and a refusal is a load alone.
type errLimiter struct {
	route      string
	status     int
	tat        atomic.Int64 // when the bucket is full again, ns since epoch
	suppressed atomic.Int64 // lines refused since the last summary

	lastSummary int64 // ns since epoch; guarded by errorLog.mu
}

// allow takes a token at now, reporting whether there was one.
func (l *errLimiter) allow(el *errorLog, now int64) bool {
	for {
		tat := l.tat.Load()
		t := max(tat, now)
		if t-now > el.tolerance {
			return false
		}
		if l.tat.CompareAndSwap(tat, t+el.interval) {
			return true
		}
	}
}

// suppress counts a line that was not written.
func (el *errorLog) suppress(l *errLimiter) {
	l.suppressed.Add(1)
	if !el.pending.Load() {
		el.pending.Store(true)
	}
}

// sweepIfDue writes the summaries that are due. It costs one atomic load
// while nothing is suppressed, and never waits for another sweep.
func (el *errorLog) sweepIfDue(ctx context.Context, t int64) {
	if !el.pending.Load() {
		return
	}
	if t < el.nextSweep.Load() || !el.mu.TryLock() {
		return
	}
	defer el.mu.Unlock()
	if t < el.nextSweep.Load() {
		return
	}
	el.nextSweep.Store(t + el.sweep)
	// Cleared before the counts are read: a line suppressed meanwhile
	// sets it again (suppress counts first, then looks at pending).
	el.pending.Store(false)
	for _, l := range el.all {
		if l.suppressed.Load() == 0 {
			continue
		}
		if t-l.lastSummary < el.summary {
			el.pending.Store(true)
			continue
		}
		n := l.suppressed.Swap(0)
		l.lastSummary = t
		el.log.LogAttrs(ctx, slog.LevelInfo, fmt.Sprintf("suppressed %d similar responses", n),
			slog.String("route", l.route), slog.Int("status", l.status), slog.Int64("suppressed", n))
	}
}

// newLimiter returns a new limiter for (route, status), registered for
// the summaries.
func (el *errorLog) newLimiter(route string, status int, now int64) *errLimiter {
	l := &errLimiter{route: route, status: status, lastSummary: now}
	el.mu.Lock()
	el.all = append(el.all, l)
	el.mu.Unlock()
	return l
}

// statusLimiters holds the limiters of one route by status, created on
// first use; a lookup is an atomic load and a small map lookup.
type statusLimiters struct {
	log   *errorLog
	route string
	mu    sync.Mutex
	m     atomic.Pointer[map[int]*errLimiter] // copy on write
}

func (s *statusLimiters) get(status int, now int64) *errLimiter {
	if p := s.m.Load(); p != nil {
		if l, ok := (*p)[status]; ok {
			return l
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Load()
	if old != nil {
		if l, ok := (*old)[status]; ok {
			return l
		}
	}
	l := s.log.newLimiter(s.route, status, now)
	next := make(map[int]*errLimiter, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[status] = l
	s.m.Store(&next)
	return l
}

// logRequest writes the access log of one request: a 4xx or 5xx response
// at Info, within its (route, status) limit, and every request at Debug.
// A response over the limit costs an atomic load and add.
func (e *endpoint) logRequest(w http.ResponseWriter, r *http.Request, out outcome, start time.Time, d time.Duration) {
	s := e.s
	ctx := r.Context()
	now := int64(start.Sub(s.errs.epoch) + d)
	level := slog.LevelDebug
	if out.status >= 400 && s.log.Enabled(ctx, slog.LevelInfo) {
		l := e.limits.get(out.status, now)
		if l.allow(s.errs, now) {
			level = slog.LevelInfo
		} else {
			s.errs.suppress(l)
		}
	}
	if level == slog.LevelInfo || s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, level, "request",
			slog.String("request_id", w.Header().Get(headerRequestID)),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", e.pattern), slog.Int("status", out.status),
			slog.String("code", out.code), slog.Duration("duration", d))
	}
	s.errs.sweepIfDue(ctx, now)
}
