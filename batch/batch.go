// Package batch is allot's group commit: concurrent callers that want to
// write to the same key share one transaction.
//
// Each key has at most one writer goroutine. A caller enqueues its request
// and waits. The writer takes everything queued for the key, in arrival
// order, up to MaxBatch, and hands it to the flush function, which runs it
// as one transaction. While that transaction commits, new requests queue up
// and form the next batch, so the number of commits per second stays
// bounded by the database's commit latency, not by the number of callers.
//
// Guarantees: a batch holds requests in the order they were enqueued; each
// caller gets exactly one result; a flush error is delivered to every
// caller of that batch. A caller that gives up before its batch is flushed
// is dropped from it, so nothing is written for it; one that gives up
// while its batch is being written is told so (Do returns the context's
// error), and its result is handed to the OnAbandoned function so the writer can
// undo what was taken for it: no caller is answered with an error while
// its request stands written. The package does not retry: the flush
// function decides what is safe to retry.
//
// # Pipelining
//
// With one batch in flight per key, the key's cycle is the commit plus
// everything between two commits: answering the batch's callers, taking
// the next batch, encoding it and starting it. A Batcher made by
// NewPipelined with Opts.Pipeline set to 2 starts batch k+1 while batch k
// commits, so that gap overlaps the commit instead of following it.
//
// The order of a key's batches is kept by the lock that orders their
// writes (the store's write lock) and by a Turn each pipelined flush is
// handed. Batch k+1 starts only once batch k has called Turn.Locked,
// saying it holds that lock, so k+1 queues for the lock behind k and takes
// it only when k has committed or rolled back: it decides after k and sees
// everything k wrote, exactly as if it had started afterwards. Starting
// k+1 any earlier could let it take the lock first, and then the two
// would wait on each other. What k+1 can't know from the lock is whether
// k committed, so before its own commit it calls Turn.Ready, which waits
// until the writer has dealt with k's outcome. If k succeeded and its
// callers took their results, k+1 commits. If k failed, or callers of k
// left while it committed (what was written for them must be undone, by
// the OnAbandoned function, before a later batch decides, or gapless
// numbers given back would be burnt), Ready returns ErrPrevious, k+1 rolls
// back (nothing of it was written), and the writer, once every batch in
// flight has ended, deals with k as with one batch in flight (delivering
// the error, flushing each request alone under Opts.Isolate, or undoing
// the abandoned results) and only then forms k+1's requests into a batch
// again, ahead of anything that arrived later. So a batch
// still decides in arrival order, sees everything committed before it, and
// a failure fails only the requests it would have failed with one batch
// in flight; results are delivered in batch order. A flush that never
// calls Locked simply runs one batch at a time.
//
// A store may call Locked any time it holds the lock and will not take it
// again. SQLite's store does so as soon as its write transaction began
// (its write lock is the process's one writer), so batch k+1 is formed and
// queued while k writes, commits and its callers are answered: on SQLite
// that paid (BENCHMARKS.md). PostgreSQL's store does not: its common
// batches (claims, issued gapless numbers) take the row lock inside one
// autocommit statement, and pipelining them would need an explicit
// transaction whose lock is held across a round trip to Go (Locked,
// Ready, then COMMIT); measured on a busy two-core machine, that was
// slower for gapless numbers and no faster for claims.
//
// Why not a pipeline on one PostgreSQL connection: a backend runs one
// connection's statements one after the other, so batch k+1's statement
// would start only once k's COMMIT returned, exactly as with the lock, and
// keeping k+1 from committing after k failed would need either k+1's
// transaction left open across a round trip, as here, or every batch sent
// in one Sync segment (so the server skips what follows an error), which
// ties every batch of the connection to the first failure and to one
// connection's stream, and a batch behind one whose caller left would
// commit before that caller's gapless numbers were given back. The lock
// and Turn keep the rule in one place for every store.
package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBatchDefault is the largest batch handed to one flush.
const MaxBatchDefault = 1024

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("batch: closed")

// ErrPrevious is what a Wait returns when the batch before failed. A flush
// that gets it must roll back, write nothing, and return it (wrapped or
// not): the Batcher then flushes its requests again after the failed batch
// has been dealt with.
var ErrPrevious = errors.New("batch: the batch before this one failed; this one was rolled back and runs again")

// FlushFunc writes one batch. It must return exactly one result per
// request, in order, or an error that fails the whole batch.
type FlushFunc[K comparable, Req, Res any] func(ctx context.Context, key K, reqs []Req) ([]Res, error)

// Turn is a pipelined flush's place in its key's order (see the package
// doc).
type Turn interface {
	// Locked says the flush now holds the lock that orders its key's
	// writes, so the next batch may start and queue behind it. A flush
	// that has called Locked must not let that lock go and take it again
	// (a retry after a rollback) unless nothing else can take it in
	// between (SQLite's store holds its writer turn across its retry): the
	// next batch may take it and wait in Ready for this one.
	Locked()
	// Ready waits until the batch before this one has been dealt with. It
	// returns nil if that batch succeeded (or there was none in flight),
	// ErrPrevious if it failed or its undo must run first, or ctx's error.
	// A flush that writes anything must call Ready before it commits, and
	// commit only on nil.
	Ready(ctx context.Context) error
}

// PipelinedFunc writes one batch like a FlushFunc, with a Turn that lets
// the next batch start while this one commits.
type PipelinedFunc[K comparable, Req, Res any] func(ctx context.Context, key K, reqs []Req, turn Turn) ([]Res, error)

// Opts are optional knobs of a Batcher.
type Opts struct {
	// MaxBatch caps the requests in one flush. Defaults to MaxBatchDefault.
	MaxBatch int
	// Pipeline is the most batches of one key in flight at once, 1 or 2,
	// for a Batcher made by NewPipelined (New always uses 1). Defaults to
	// 1; more than 2 is taken as 2: a batch starts only once the one
	// before holds the lock, so a third would only queue for it too.
	Pipeline int
	// Observe, if set, is called after every flush with its size and
	// duration. With Pipeline above 1 it may be called from several
	// goroutines at once.
	Observe func(size int, d time.Duration, err error)
	// Isolate, if set, says whether a flush error may belong to one
	// request rather than to the database (bad data, not a lost
	// connection). It may only accept errors after which nothing of the
	// batch was written. A batch of several requests that fails so is flushed
	// again one request at a time, so one caller's bad request fails only
	// that caller. Defaults to nil: every flush error fails the batch.
	Isolate func(err error) bool
}

// Batcher groups concurrent requests per key into single flushes.
type Batcher[K comparable, Req, Res any] struct {
	flush     PipelinedFunc[K, Req, Res]
	opts      Opts
	abandoned func(key K, reqs []Req, res []Res)
	dropped   func(key K, req Req, err error)

	mu     sync.Mutex
	queues map[K]*queue[Req, Res]
	closed bool
	wg     sync.WaitGroup
}

type call[Req, Res any] struct {
	ctx  context.Context
	req  Req
	done chan result[Res]
	// state decides, once, whether the caller takes its result
	// (delivered) or left without it (abandoned).
	state atomic.Int32
}

const (
	callWaiting int32 = iota
	callDelivered
	callAbandoned
)

type result[Res any] struct {
	res Res
	err error
}

type queue[Req, Res any] struct {
	pending []*call[Req, Res]
	running bool
	// wake tells the writer that a request arrived while it waits on a
	// batch in flight with room for another.
	wake chan struct{}
}

// flight is one flush under way, and its Turn: locked is closed when it
// called Locked, done when it has returned, settled when the writer has
// dealt with its outcome (spoiled is then set if callers of its
// successful batch had left: what was written for them is undone before
// the batch behind it may commit).
type flight[Req, Res any] struct {
	calls   []*call[Req, Res]
	prev    *flight[Req, Res] // in flight as this one started, or nil
	locked  chan struct{}
	once    sync.Once
	done    chan struct{}
	settled chan struct{}
	res     []Res
	err     error
	spoiled bool
}

func newFlight[Req, Res any](calls []*call[Req, Res], prev *flight[Req, Res]) *flight[Req, Res] {
	return &flight[Req, Res]{calls: calls, prev: prev, locked: make(chan struct{}), done: make(chan struct{}), settled: make(chan struct{})}
}

func (f *flight[Req, Res]) Locked() { f.once.Do(func() { close(f.locked) }) }

func (f *flight[Req, Res]) Ready(ctx context.Context) error {
	if f.prev == nil {
		return nil
	}
	select {
	case <-f.prev.settled:
		if f.prev.err != nil || f.prev.spoiled {
			return ErrPrevious
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isLocked reports whether f called Locked.
func (f *flight[Req, Res]) isLocked() bool {
	select {
	case <-f.locked:
		return true
	default:
		return false
	}
}

// New returns a Batcher that writes with flush, one batch per key at a
// time.
func New[K comparable, Req, Res any](flush FlushFunc[K, Req, Res], opts Opts) *Batcher[K, Req, Res] {
	opts.Pipeline = 1
	return NewPipelined(func(ctx context.Context, key K, reqs []Req, _ Turn) ([]Res, error) {
		return flush(ctx, key, reqs)
	}, opts)
}

// NewPipelined returns a Batcher that writes with flush, with up to
// opts.Pipeline batches of one key in flight (see the package doc).
func NewPipelined[K comparable, Req, Res any](flush PipelinedFunc[K, Req, Res], opts Opts) *Batcher[K, Req, Res] {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = MaxBatchDefault
	}
	opts.Pipeline = min(max(opts.Pipeline, 1), 2)
	return &Batcher[K, Req, Res]{flush: flush, opts: opts, queues: make(map[K]*queue[Req, Res])}
}

// OnAbandoned sets fn to be called, on the writer goroutine, with the
// requests (and their results) of a successful flush whose callers gave
// up while it ran: they were answered with their context's error, so what
// was written for them should be undone. Call it before the first Do.
func (b *Batcher[K, Req, Res]) OnAbandoned(fn func(key K, reqs []Req, res []Res)) *Batcher[K, Req, Res] {
	b.abandoned = fn
	return b
}

// OnDropped sets fn to be called, on the writer goroutine, for a request
// dropped without being flushed because its caller gave up first (it was
// answered with err, its context's error), so whatever was set up for it
// before Do can be undone. Call it before the first Do.
func (b *Batcher[K, Req, Res]) OnDropped(fn func(key K, req Req, err error)) *Batcher[K, Req, Res] {
	b.dropped = fn
	return b
}

// drop answers a caller that gave up before its request was written.
func (b *Batcher[K, Req, Res]) drop(key K, c *call[Req, Res]) {
	err := c.ctx.Err()
	c.deliver(result[Res]{err: err})
	if b.dropped != nil {
		b.dropped(key, c.req, err)
	}
}

// Do enqueues req under key and waits for its result. If ctx ends first,
// Do returns ctx.Err(): the request was either dropped before its batch
// was written, or written and handed to the OnAbandoned function. If the result
// arrived first, Do returns it even if ctx has ended meanwhile.
func (b *Batcher[K, Req, Res]) Do(ctx context.Context, key K, req Req) (Res, error) {
	c := &call[Req, Res]{ctx: ctx, req: req, done: make(chan result[Res], 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		var zero Res
		return zero, ErrClosed
	}
	q := b.queues[key]
	if q == nil {
		q = &queue[Req, Res]{wake: make(chan struct{}, 1)}
		b.queues[key] = q
	}
	q.pending = append(q.pending, c)
	if !q.running {
		q.running = true
		b.wg.Add(1)
		go b.run(key, q)
	} else {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()

	select {
	case r := <-c.done:
		return r.res, r.err
	case <-ctx.Done():
		if c.state.CompareAndSwap(callWaiting, callAbandoned) {
			var zero Res
			return zero, ctx.Err()
		}
		// The writer delivered first: take the result, which stands.
		r := <-c.done
		return r.res, r.err
	}
}

// deliver hands r to the caller unless it already left; it reports
// whether the caller took it.
func (c *call[Req, Res]) deliver(r result[Res]) bool {
	if !c.state.CompareAndSwap(callWaiting, callDelivered) {
		return false
	}
	c.done <- r
	return true
}

// run is the key's writer: it flushes until the queue is empty and no
// batch is in flight, then exits. Only one run per key exists at a time
// (q.running), which is what makes the batches the units of ordering for
// that key.
func (b *Batcher[K, Req, Res]) run(key K, q *queue[Req, Res]) {
	defer b.wg.Done()
	var inflight []*flight[Req, Res] // oldest first
	for {
		// A batch may start when none is in flight, or when there is room
		// and the last one holds its lock (so this one queues behind it).
		var last *flight[Req, Res]
		if len(inflight) > 0 {
			last = inflight[len(inflight)-1]
		}
		room := len(inflight) < b.opts.Pipeline
		if last == nil || room && last.isLocked() {
			calls, more := b.take(key, q, last == nil)
			if !more {
				return
			}
			if len(calls) > 0 {
				inflight = append(inflight, b.start(key, calls, last))
				continue
			}
			if last == nil {
				continue // everything taken had given up
			}
		}
		var wake, locked <-chan struct{}
		if room {
			if last.isLocked() {
				wake = q.wake
			} else {
				locked = last.locked
			}
		}
		select {
		case <-inflight[0].done:
			inflight = b.retire(key, q, inflight)
		case <-locked:
		case <-wake:
		}
	}
}

// take removes the next batch from the queue, answering the callers in it
// that already gave up. When the queue is empty it returns more = false
// if the writer may exit (nothing is in flight, idle), having marked the
// queue as without a writer.
func (b *Batcher[K, Req, Res]) take(key K, q *queue[Req, Res], idle bool) (calls []*call[Req, Res], more bool) {
	b.mu.Lock()
	n := len(q.pending)
	if n == 0 {
		if idle {
			q.running = false
			delete(b.queues, key)
		}
		b.mu.Unlock()
		return nil, !idle
	}
	n = min(n, b.opts.MaxBatch)
	calls = make([]*call[Req, Res], 0, n)
	var gone []*call[Req, Res]
	for _, c := range q.pending[:n] {
		// A caller that already gave up is dropped before the write,
		// so nothing is taken for it.
		if c.ctx.Err() != nil {
			gone = append(gone, c)
			continue
		}
		calls = append(calls, c)
	}
	q.pending = append(q.pending[:0:0], q.pending[n:]...)
	b.mu.Unlock()
	for _, c := range gone {
		b.drop(key, c)
	}
	return calls, true
}

// start flushes calls behind prev (nil if none is in flight): inline
// when one batch at a time is the rule, else on its own goroutine.
func (b *Batcher[K, Req, Res]) start(key K, calls []*call[Req, Res], prev *flight[Req, Res]) *flight[Req, Res] {
	f := newFlight(calls, prev)
	if b.opts.Pipeline == 1 {
		f.res, f.err = b.flushOnce(key, calls, f)
		close(f.done)
		return f
	}
	go func() {
		f.res, f.err = b.flushOnce(key, calls, f)
		f.prev = nil // let the chain of ended flights go
		close(f.done)
	}()
	return f
}

// retire deals with the oldest batch in flight, which has ended, and
// returns what is still in flight. Its results go to its callers; the
// batch behind it, waiting in Ready, may then commit. Two outcomes make
// that batch roll back instead (ErrPrevious) and wait, with every other
// batch in flight, until this one is dealt with, so none holds a lock the
// work here needs: this batch failed (its error is delivered, or each of
// its requests flushed alone under Opts.Isolate), or callers of it left
// while it committed (the OnAbandoned function undoes what was written
// for them, before a later batch decides, as with one batch in flight:
// gapless numbers given back this way are the next ones issued). The
// requests of the batches that rolled back then go back to the head of
// the queue, in order.
func (b *Batcher[K, Req, Res]) retire(key K, q *queue[Req, Res], inflight []*flight[Req, Res]) []*flight[Req, Res] {
	f, rest := inflight[0], inflight[1:]
	var left leftovers[Req, Res]
	if f.err == nil {
		left = b.hand(f.calls, f.res)
		f.spoiled = len(left.reqs) > 0 && b.abandoned != nil && len(rest) > 0
	}
	close(f.settled)
	if f.err == nil && !f.spoiled {
		b.undo(key, left)
		return rest
	}
	for _, g := range rest {
		<-g.done
	}
	if f.err != nil {
		b.finish(key, f.calls, nil, f.err)
	} else {
		b.undo(key, left)
	}
	var again []*call[Req, Res]
	for _, g := range rest {
		if errors.Is(g.err, ErrPrevious) {
			again = append(again, g.calls...)
		} else {
			b.finish(key, g.calls, g.res, g.err)
		}
		close(g.settled)
	}
	if len(again) > 0 {
		b.mu.Lock()
		q.pending = append(again, q.pending...)
		b.mu.Unlock()
	}
	return nil
}

// flushOnce runs the flush function on calls and checks its answer.
func (b *Batcher[K, Req, Res]) flushOnce(key K, calls []*call[Req, Res], turn Turn) ([]Res, error) {
	reqs := make([]Req, len(calls))
	for i, c := range calls {
		reqs[i] = c.req
	}
	start := time.Now()
	// The batch runs to completion even if its callers leave: a half-done
	// group commit is worse than an unwanted one.
	res, err := b.flush(context.WithoutCancel(calls[0].ctx), key, reqs, turn)
	if err == nil && len(res) != len(reqs) {
		err = errors.New("batch: flush returned the wrong number of results")
	}
	if b.opts.Observe != nil {
		b.opts.Observe(len(reqs), time.Since(start), err)
	}
	return res, err
}

// finish delivers a flush's outcome to its callers, in order.
func (b *Batcher[K, Req, Res]) finish(key K, calls []*call[Req, Res], res []Res, err error) {
	if err != nil && len(calls) > 1 && b.opts.Isolate != nil && b.opts.Isolate(err) {
		// Nothing of the failed batch was written; each request now
		// gets its own flush, and its own outcome. A caller that gave up
		// meanwhile is answered without a write, as in take.
		for _, c := range calls {
			if c.ctx.Err() != nil {
				b.drop(key, c)
				continue
			}
			one := []*call[Req, Res]{c}
			r, err := b.flushOnce(key, one, newFlight(one, nil))
			b.finish(key, one, r, err)
		}
		return
	}
	if err != nil {
		for _, c := range calls {
			c.deliver(result[Res]{err: err})
		}
		return
	}
	b.undo(key, b.hand(calls, res))
}

// leftovers are the requests, and results, of a successful batch whose
// callers left before they were handed their results.
type leftovers[Req, Res any] struct {
	reqs []Req
	res  []Res
}

// hand delivers a successful batch's results to its callers, in order,
// and returns those whose callers had left.
func (b *Batcher[K, Req, Res]) hand(calls []*call[Req, Res], res []Res) leftovers[Req, Res] {
	var left leftovers[Req, Res]
	for i, c := range calls {
		if !c.deliver(result[Res]{res: res[i]}) {
			left.reqs, left.res = append(left.reqs, c.req), append(left.res, res[i])
		}
	}
	return left
}

// undo hands leftovers to the OnAbandoned function.
func (b *Batcher[K, Req, Res]) undo(key K, left leftovers[Req, Res]) {
	if len(left.reqs) > 0 && b.abandoned != nil {
		b.abandoned(key, left.reqs, left.res)
	}
}

// Close stops accepting requests and waits for queued ones to be flushed.
func (b *Batcher[K, Req, Res]) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}
