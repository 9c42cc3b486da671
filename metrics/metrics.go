// Package metrics records allot's measurements on a Prometheus registry:
// the service's events (group commits, claim outcomes) through
// allot.Observer, the HTTP layer's request durations, and gauges of every
// sequence and pool computed when scraped. The HTTP server serves the
// registry at /metrics; nothing here depends on HTTP.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/allot/allot"
)

// collectTimeout bounds the SequenceList and PoolList behind the gauges.
const collectTimeout = 2 * time.Second

// Metrics records allot's HTTP, group-commit and claim metrics on a
// Prometheus registry. It implements allot.Observer, so the same value can
// be passed to allot.Config.Metrics and to httpapi.Config.Metrics. It is
// safe for concurrent use.
type Metrics struct {
	reg             *prometheus.Registry
	requestDuration *prometheus.HistogramVec
	batchSize       *prometheus.HistogramVec
	commitDuration  *prometheus.HistogramVec
	batchErrors     *prometheus.CounterVec
	claims          *prometheus.CounterVec

	kinds         cowMap[string, kindObservers]
	claimCounters cowMap[claimKey, prometheus.Counter]
}

var _ allot.Observer = (*Metrics)(nil)

// claimKey is the label pair of allot_claims_total.
type claimKey struct{ pool, outcome string }

type kindObservers struct {
	size, duration prometheus.Observer
	errors         prometheus.Counter
}

// New creates allot's metrics on reg (a new registry if reg is nil).
// Calling it again with the same registry returns Metrics sharing the
// metrics already registered. It panics only if reg holds different
// metrics under the same names, which is a programming error.
func New(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{reg: reg}
	m.requestDuration = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "allot_http_request_duration_seconds",
		Help:    "Duration of HTTP requests by route pattern and status code.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "code"}))
	m.batchSize = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "allot_batch_size",
		Help:    "Requests per group commit, by kind.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 .. 1024
	}, []string{"kind"}))
	m.commitDuration = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "allot_commit_duration_seconds",
		Help:    "Duration of group-commit transactions, by kind.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"kind"}))
	m.batchErrors = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "allot_batch_errors_total",
		Help: "Group commits that failed as a whole, by kind.",
	}, []string{"kind"}))
	m.claims = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "allot_claims_total",
		Help: `Claims by pool and outcome: "held" for a claim that got its units, else the reason it was refused (sold_out, customer_limit, pool_closed, idempotency_mismatch, not_admitted, error). Replays are not counted.`,
	}, []string{"pool", "outcome"}))
	return m
}

// register registers c on reg, or returns the equal collector already there.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic("metrics: " + err.Error())
}

// Registry returns the registry the metrics live on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe implements allot.Observer: a group commit's size and duration
// (and whether it failed) for an allot.BatchEvent, one claim outcome of a
// pool for an allot.ClaimEvent. Other events are ignored.
func (m *Metrics) Observe(e allot.Event) {
	switch e := e.(type) {
	case allot.BatchEvent:
		m.observeBatch(e.Kind, e.Size, e.Duration, e.Err)
	case allot.ClaimEvent:
		m.observeClaim(e.Pool, e.Outcome)
	}
}

func (m *Metrics) observeBatch(kind string, size int, d time.Duration, err error) {
	o := m.kind(kind)
	o.size.Observe(float64(size))
	o.duration.Observe(d.Seconds())
	if err != nil {
		o.errors.Inc()
	}
}

// observeClaim counts one claim outcome of a pool. The rate of outcome
// "held" is claims per second; the other outcomes are rejections by
// reason.
func (m *Metrics) observeClaim(pool, outcome string) {
	m.claimCounters.get(claimKey{pool, outcome}, func() prometheus.Counter {
		return m.claims.WithLabelValues(pool, outcome)
	}).Inc()
}

// kind returns the observers of a kind, resolving its labels once.
func (m *Metrics) kind(kind string) kindObservers {
	return m.kinds.get(kind, func() kindObservers {
		return kindObservers{
			size:     m.batchSize.WithLabelValues(kind),
			duration: m.commitDuration.WithLabelValues(kind),
			errors:   m.batchErrors.WithLabelValues(kind),
		}
	})
}

// cowMap is a map read on every request without a lock: reads load a
// pointer, the rare write copies the map under a mutex. The zero value is
// empty and ready.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	p  atomic.Pointer[map[K]V]
}

// get returns the value of k, creating it with create on first use.
func (c *cowMap[K, V]) get(k K, create func() V) V {
	if p := c.p.Load(); p != nil {
		if v, ok := (*p)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.p.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v := create()
	next := make(map[K]V, 1)
	if old != nil {
		maps.Copy(next, *old)
	}
	next[k] = v
	c.p.Store(&next)
	return v
}

// Route returns the request-duration histograms of one route pattern.
func (m *Metrics) Route(pattern string) *RouteObservers {
	return &RouteObservers{vec: m.requestDuration, route: pattern}
}

// RouteObservers caches the histogram of one route per status code, so a
// request costs an atomic load and a small map lookup, not a label hash.
type RouteObservers struct {
	vec   *prometheus.HistogramVec
	route string
	codes cowMap[int, prometheus.Observer]
}

// Get returns the histogram of the route's responses with status code.
func (c *RouteObservers) Get(code int) prometheus.Observer {
	return c.codes.get(code, func() prometheus.Observer {
		return c.vec.WithLabelValues(c.route, strconv.Itoa(code))
	})
}

// CollectService registers, on the metrics' registry, the gauges of every
// sequence and pool of svc, computed when scraped. One Service per
// registry: a second registration fails.
func (m *Metrics) CollectService(svc *allot.Service, log *slog.Logger) error {
	if err := m.reg.Register(&serviceCollector{svc: svc, log: log}); err != nil {
		return fmt.Errorf("register the sequence and pool gauges (one Server per registry): %w", err)
	}
	return nil
}

var (
	descRemaining = prometheus.NewDesc("allot_sequence_remaining",
		"Numbers left before max in the current period.", []string{"sequence"}, nil)
	descWarning = prometheus.NewDesc("allot_sequence_warning",
		"1 when the used fraction of the current period passed warn_at, else 0.", []string{"sequence"}, nil)
	descNumbers = prometheus.NewDesc("allot_sequence_numbers",
		"Numbers of the current period by state: issued (known handed out), leased (in leases of servers that have not said what they handed out), reserved (two-phase, awaiting confirmation), voided. The same on every server.",
		[]string{"sequence", "state"}, nil)
)

var (
	descPoolCapacity = prometheus.NewDesc("allot_pool_capacity",
		"Units the pool has.", []string{"pool"}, nil)
	descPoolHeld = prometheus.NewDesc("allot_pool_held",
		"Units in live (unexpired) holds.", []string{"pool"}, nil)
	descPoolConfirmed = prometheus.NewDesc("allot_pool_confirmed",
		"Units sold (confirmed claims).", []string{"pool"}, nil)
)

// outage reports a collect error the service's outage report covers: a
// store down, or one too slow to answer within collectTimeout. Logging
// those per scrape would print a line per scrape during an outage.
func outage(err error) bool {
	return errors.Is(err, allot.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// serviceCollector computes the sequence and pool gauges when scraped.
type serviceCollector struct {
	svc *allot.Service
	log *slog.Logger
}

// Describe implements prometheus.Collector.
func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRemaining, descWarning, descNumbers, descPoolCapacity, descPoolHeld, descPoolConfirmed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A list that fails is logged
// and reported as nothing, so one slow database does not fail the whole
// scrape.
func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	if seqs, ok := collect(ctx, c.log, "sequences", c.svc.SequenceList); ok {
		for _, st := range seqs {
			warning := int64(0)
			if st.Warning {
				warning = 1
			}
			gauge(descRemaining, st.Remaining, st.Name)
			gauge(descWarning, warning, st.Name)
			for state, n := range map[string]int64{"issued": st.Issued, "leased": st.Leased, "reserved": st.Reserved, "voided": st.Voided} {
				gauge(descNumbers, n, st.Name, state)
			}
		}
	}
	if pools, ok := collect(ctx, c.log, "pools", c.svc.PoolList); ok {
		for _, st := range pools {
			gauge(descPoolCapacity, st.Capacity, st.Name)
			gauge(descPoolHeld, st.Held, st.Name)
			gauge(descPoolConfirmed, st.Confirmed, st.Name)
		}
	}
}

// collect lists what the gauges need, logging a failure unless it is an
// outage (the service reports those itself, once).
func collect[T any](ctx context.Context, log *slog.Logger, what string, list func(context.Context) ([]T, error)) ([]T, bool) {
	out, err := list(ctx)
	if err != nil {
		if !outage(err) {
			log.Warn("metrics: list "+what, "err", err)
		}
		return nil, false
	}
	return out, true
}
