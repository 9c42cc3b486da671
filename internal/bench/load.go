package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied by [Run] to zero-valued [Options] fields.
const (
	// DefaultClients is the number of concurrent clients.
	DefaultClients = 64
	// DefaultDuration is the measured time per target and run.
	DefaultDuration = 5 * time.Second
	// DefaultWarmup is the unmeasured time before each measured window.
	DefaultWarmup = time.Second
	// DefaultRepeat is the number of interleaved runs per target.
	DefaultRepeat = 3
)

// minDrain is the shortest time in-flight requests are given to finish
// after a measured window closes; see [Options.Duration].
const minDrain = time.Second

// errorSampleLimit caps how much of a failed response body is kept.
const errorSampleLimit = 512

// Target is one HTTP endpoint to load.
type Target struct {
	// Name identifies the target in results and reports, e.g.
	// "allot cached count=1" or "baseline noop". Names must be unique
	// within one [Run].
	Name string
	// URL is the full http or https URL every request is POSTed to.
	URL string
	// Body is the request body (JSON), sent with every request; nil sends
	// an empty body. A non-empty body gets "Content-Type:
	// application/json" unless Header sets a Content-Type.
	Body []byte
	// BodyFunc, when set, builds each request's body instead of Body: it
	// is called with i = 0, 1, 2, … numbering the target's requests
	// across all runs of one [Run] (warmup included), so every request
	// can carry a distinct body, e.g. a distinct customer. It is called
	// from many goroutines at once. Requests get "Content-Type:
	// application/json" unless Header sets a Content-Type.
	BodyFunc func(i uint64) []byte
	// Header holds extra request headers, e.g. Authorization.
	Header http.Header
	// IDsPerRequest is how many IDs one successful request hands out, used
	// to report IDs/s. Zero means 1.
	IDsPerRequest int
}

// Options controls a [Run]. Zero values select the defaults.
type Options struct {
	// Clients is the number of concurrent clients (in open-loop mode: the
	// most requests in flight at once). Default [DefaultClients].
	Clients int
	// Duration is the measured time per target and run. Default
	// [DefaultDuration]. Requests still in flight when it ends are given
	// another Duration (at least one second) to finish and are then
	// cancelled and counted as errors, so a run never lasts longer than
	// Warmup + 2×Duration (+1s).
	Duration time.Duration
	// Warmup is the unmeasured time before each measured window. Zero
	// means [DefaultWarmup]; a negative value means no warmup.
	Warmup time.Duration
	// Rate, when positive, switches to open-loop mode: requests are
	// scheduled at this many per second in total on a constant arrival
	// schedule, independent of how fast the target answers, and each
	// latency is measured from the request's intended send time (no
	// coordinated omission). Zero means closed-loop: each client sends its
	// next request as soon as the previous one finished.
	Rate float64
	// Repeat is how many times each target is run, interleaved
	// (A, B, C, A, B, C, …); the median run is reported. Default
	// [DefaultRepeat].
	Repeat int
}

// RunResult is one measured run of one target.
type RunResult struct {
	// Round is the 0-based repetition this run belongs to.
	Round int
	// Requests is the number of requests sent in the measured window (in
	// open-loop mode: scheduled in it), successful or not.
	Requests int64
	// Errors is how many of Requests failed: transport errors, non-2xx
	// responses, and requests that did not finish in the drain period.
	Errors int64
	// Throughput is successful requests per second.
	Throughput float64
	// IDsPerSec is Throughput times the target's IDsPerRequest.
	IDsPerSec float64
	// P50, P99, P999 and Max are latency percentiles of the successful
	// requests (nearest rank over every recorded latency; zero if none).
	P50, P99, P999, Max time.Duration
	// Elapsed is the time from the start of the measured window to the
	// last measured response (never less than Duration); Throughput is
	// computed over it.
	Elapsed time.Duration
	// ErrorSample describes one error of this run, empty if none.
	ErrorSample string
}

// Result is the outcome for one target: the figures of its median run
// (by Throughput; with an even number of runs, the lower middle one), and
// every run.
type Result struct {
	// Target is the target's Name.
	Target string
	// Requests and Errors are the median run's counts.
	Requests, Errors int64
	// Throughput is the median run's successful requests per second.
	Throughput float64
	// IDsPerSec is the median run's IDs per second.
	IDsPerSec float64
	// P50, P99, P999 and Max are the median run's latency percentiles.
	P50, P99, P999, Max time.Duration
	// ErrorSample is the median run's error sample or, if that run had no
	// errors, the first sample of any other run, so that errors are never
	// hidden by the median.
	ErrorSample string
	// Runs holds every run in order.
	Runs []RunResult
}

// ErrorRuns returns how many of r.Runs had at least one error.
func (r Result) ErrorRuns() int {
	n := 0
	for _, run := range r.Runs {
		if run.Errors > 0 {
			n++
		}
	}
	return n
}

// Run loads every target in turn, opts.Repeat times interleaved
// (A, B, C, A, B, C, …), all through one shared HTTP transport, and
// returns one [Result] per target in the order given.
//
// Requests go only to the targets' URLs: redirects are not followed (a 3xx
// is an error like any other non-2xx response) and no proxy is used.
// Response bodies are drained and discarded, so connections are reused.
//
// If ctx is cancelled Run stops promptly, waits for its clients to exit and
// returns ctx's error together with results for the targets that finished
// at least one run (the interrupted run is dropped).
func Run(ctx context.Context, targets []Target, opts Options) ([]Result, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	prepared, err := prepareTargets(targets)
	if err != nil {
		return nil, err
	}
	tr := newTransport(opts.Clients)
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}

	runs := make([][]RunResult, len(prepared))
	for round := 0; round < opts.Repeat; round++ {
		for i := range prepared {
			rr, err := runOnce(ctx, client, &prepared[i], opts)
			if err != nil {
				return summarize(prepared, runs), err
			}
			rr.Round = round
			runs[i] = append(runs[i], rr)
		}
	}
	return summarize(prepared, runs), nil
}

func (o Options) normalize() (Options, error) {
	if o.Clients <= 0 {
		o.Clients = DefaultClients
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	switch {
	case o.Warmup == 0:
		o.Warmup = DefaultWarmup
	case o.Warmup < 0:
		o.Warmup = 0
	}
	if o.Repeat <= 0 {
		o.Repeat = DefaultRepeat
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		return o, fmt.Errorf("bench: invalid rate %v", o.Rate)
	}
	return o, nil
}

// preparedTarget is a validated Target with its per-request constants.
type preparedTarget struct {
	Target
	header http.Header    // shared by all requests; never modified after prepare
	seq    *atomic.Uint64 // numbers the requests for BodyFunc
}

func prepareTargets(targets []Target) ([]preparedTarget, error) {
	if len(targets) == 0 {
		return nil, errors.New("bench: no targets")
	}
	seen := make(map[string]bool, len(targets))
	out := make([]preparedTarget, len(targets))
	for i, t := range targets {
		if t.Name == "" {
			return nil, fmt.Errorf("bench: target %d has no name", i)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("bench: duplicate target name %q", t.Name)
		}
		seen[t.Name] = true
		u, err := url.Parse(t.URL)
		if err != nil {
			return nil, fmt.Errorf("bench: target %q: %w", t.Name, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bench: target %q: URL %q is not an absolute http(s) URL", t.Name, t.URL)
		}
		if t.IDsPerRequest < 0 {
			return nil, fmt.Errorf("bench: target %q: negative IDsPerRequest", t.Name)
		}
		if t.IDsPerRequest == 0 {
			t.IDsPerRequest = 1
		}
		h := t.Header.Clone()
		if h == nil {
			h = make(http.Header)
		}
		if (len(t.Body) > 0 || t.BodyFunc != nil) && h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/json")
		}
		out[i] = preparedTarget{Target: t, header: h, seq: new(atomic.Uint64)}
	}
	return out, nil
}

// newTransport returns a transport for many keep-alive connections to a
// few loopback hosts.
func newTransport(clients int) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never send load anywhere but the target itself
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        0, // no global limit
		MaxIdleConnsPerHost: clients,
		IdleConnTimeout:     5 * time.Minute,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// statusError is a non-2xx response.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("HTTP %d", e.code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.code, e.body)
}

// do sends one request and reads the whole response. It returns nil only
// for a 2xx response whose body was read completely.
func (t *preparedTarget) do(ctx context.Context, c *http.Client) error {
	var body io.Reader
	if t.BodyFunc != nil {
		if b := t.BodyFunc(t.seq.Add(1) - 1); len(b) > 0 {
			body = bytes.NewReader(b)
		}
	} else if len(t.Body) > 0 {
		body = bytes.NewReader(t.Body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, body)
	if err != nil {
		return err
	}
	req.Header = t.header
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		sample, _ := io.ReadAll(io.LimitReader(resp.Body, errorSampleLimit))
		_, _ = io.Copy(io.Discard, resp.Body)
		return &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(sample))}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("reading response body: %w", err)
	}
	return nil
}

// clientStats is what one client goroutine records; only that goroutine
// touches it until the run's WaitGroup is done.
type clientStats struct {
	lat       []time.Duration // successful requests only
	requests  int64
	errors    int64
	errSample string
	lastDone  time.Time
}

// window is the timing of one run.
type window struct {
	start        time.Time // clients start (warmup begins)
	measureStart time.Time
	end          time.Time // no measured request is sent at or after end
}

// runOnce runs one target once: warmup, measured window, drain.
func runOnce(ctx context.Context, c *http.Client, t *preparedTarget, opts Options) (RunResult, error) {
	if err := ctx.Err(); err != nil {
		return RunResult{}, err
	}
	var w window
	w.start = time.Now()
	w.measureStart = w.start.Add(opts.Warmup)
	w.end = w.measureStart.Add(opts.Duration)
	reqCtx, cancel := context.WithDeadline(ctx, w.end.Add(max(opts.Duration, minDrain)))
	defer cancel()

	capHint := 1024
	if opts.Rate > 0 {
		capHint = int(opts.Rate*opts.Duration.Seconds())/opts.Clients + 16
	}
	capHint = min(capHint, 1<<16)

	stats := make([]clientStats, opts.Clients)
	var next atomic.Int64 // open-loop: next schedule slot
	var wg sync.WaitGroup
	for i := range stats {
		s := &stats[i]
		s.lat = make([]time.Duration, 0, capHint)
		wg.Go(func() {
			if opts.Rate > 0 {
				openLoop(ctx, reqCtx, c, t, w, opts.Rate, &next, s)
			} else {
				closedLoop(ctx, reqCtx, c, t, w, s)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return RunResult{}, err
	}
	return mergeStats(stats, w, t.IDsPerRequest), nil
}

// closedLoop sends requests back to back until the window ends.
func closedLoop(ctx, reqCtx context.Context, c *http.Client, t *preparedTarget, w window, s *clientStats) {
	for ctx.Err() == nil {
		sent := time.Now()
		if !sent.Before(w.end) {
			return
		}
		err := t.do(reqCtx, c)
		done := time.Now()
		if !sent.Before(w.measureStart) {
			s.record(ctx, reqCtx, sent, done, err)
		}
	}
}

// openLoop takes slots of a constant arrival schedule shared by all
// clients (slot i is due at start + i/rate), waits for each slot's time
// unless it is already late, and measures latency from the slot's due
// time, so time spent waiting for a free client counts as latency.
func openLoop(ctx, reqCtx context.Context, c *http.Client, t *preparedTarget, w window, rate float64, next *atomic.Int64, s *clientStats) {
	interval := float64(time.Second) / rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		slot := next.Add(1) - 1
		due := w.start.Add(time.Duration(float64(slot) * interval))
		if !due.Before(w.end) {
			return
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		err := t.do(reqCtx, c)
		done := time.Now()
		if !due.Before(w.measureStart) {
			s.record(ctx, reqCtx, due, done, err)
		}
	}
}

// record accounts for one measured request sent (or due) at from.
func (s *clientStats) record(ctx, reqCtx context.Context, from, done time.Time, err error) {
	s.requests++
	if done.After(s.lastDone) {
		s.lastDone = done
	}
	if err == nil {
		s.lat = append(s.lat, done.Sub(from))
		return
	}
	s.errors++
	if s.errSample == "" {
		if ctx.Err() == nil && errors.Is(reqCtx.Err(), context.DeadlineExceeded) {
			s.errSample = "request not finished within the drain period after the measured window: " + err.Error()
		} else {
			s.errSample = err.Error()
		}
	}
}

// mergeStats combines the clients' records into one RunResult.
func mergeStats(stats []clientStats, w window, idsPerRequest int) RunResult {
	var rr RunResult
	n := 0
	last := w.end
	for i := range stats {
		s := &stats[i]
		rr.Requests += s.requests
		rr.Errors += s.errors
		n += len(s.lat)
		if rr.ErrorSample == "" {
			rr.ErrorSample = s.errSample
		}
		if s.lastDone.After(last) {
			last = s.lastDone
		}
	}
	lat := make([]time.Duration, 0, n)
	for i := range stats {
		lat = append(lat, stats[i].lat...)
	}
	slices.Sort(lat)
	rr.P50 = percentile(lat, 0.50)
	rr.P99 = percentile(lat, 0.99)
	rr.P999 = percentile(lat, 0.999)
	if len(lat) > 0 {
		rr.Max = lat[len(lat)-1]
	}
	rr.Elapsed = last.Sub(w.measureStart)
	if secs := rr.Elapsed.Seconds(); secs > 0 {
		rr.Throughput = float64(rr.Requests-rr.Errors) / secs
	}
	rr.IDsPerSec = rr.Throughput * float64(idsPerRequest)
	return rr
}

// percentile returns the nearest-rank q-quantile of sorted, or 0 if empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarize builds one Result per target that has at least one run.
func summarize(targets []preparedTarget, runs [][]RunResult) []Result {
	var out []Result
	for i, t := range targets {
		if len(runs[i]) == 0 {
			continue
		}
		out = append(out, resultOf(t.Name, runs[i]))
	}
	return out
}

// resultOf picks the median run by throughput (the lower middle one for an
// even count).
func resultOf(name string, runs []RunResult) Result {
	order := make([]int, len(runs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case runs[a].Throughput < runs[b].Throughput:
			return -1
		case runs[a].Throughput > runs[b].Throughput:
			return 1
		}
		return 0
	})
	m := runs[order[(len(order)-1)/2]]
	r := Result{
		Target:      name,
		Requests:    m.Requests,
		Errors:      m.Errors,
		Throughput:  m.Throughput,
		IDsPerSec:   m.IDsPerSec,
		P50:         m.P50,
		P99:         m.P99,
		P999:        m.P999,
		Max:         m.Max,
		ErrorSample: m.ErrorSample,
		Runs:        slices.Clone(runs),
	}
	for _, run := range runs {
		if r.ErrorSample != "" {
			break
		}
		r.ErrorSample = run.ErrorSample
	}
	return r
}
