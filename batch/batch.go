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

// FlushFunc writes one batch. It must return exactly one result per
// request, in order, or an error that fails the whole batch.
type FlushFunc[K comparable, Req, Res any] func(ctx context.Context, key K, reqs []Req) ([]Res, error)

// Opts are optional knobs of a Batcher.
type Opts struct {
	// MaxBatch caps the requests in one flush. Defaults to MaxBatchDefault.
	MaxBatch int
	// Observe, if set, is called after every flush with its size and duration.
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
	flush     FlushFunc[K, Req, Res]
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
}

// New returns a Batcher that writes with flush.
func New[K comparable, Req, Res any](flush FlushFunc[K, Req, Res], opts Opts) *Batcher[K, Req, Res] {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = MaxBatchDefault
	}
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
		q = &queue[Req, Res]{}
		b.queues[key] = q
	}
	q.pending = append(q.pending, c)
	if !q.running {
		q.running = true
		b.wg.Add(1)
		go b.run(key, q)
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

// run is the key's writer: it flushes until the queue is empty, then exits.
// Only one run per key exists at a time (q.running), which is what makes a
// batch the unit of ordering for that key.
func (b *Batcher[K, Req, Res]) run(key K, q *queue[Req, Res]) {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		n := len(q.pending)
		if n == 0 {
			q.running = false
			delete(b.queues, key)
			b.mu.Unlock()
			return
		}
		if n > b.opts.MaxBatch {
			n = b.opts.MaxBatch
		}
		calls := make([]*call[Req, Res], 0, n)
		var gone []*call[Req, Res]
		for _, c := range q.pending[:n] {
			// A caller that already gave up is dropped before the
			// write, so nothing is taken for it.
			if c.ctx.Err() != nil {
				gone = append(gone, c)
				continue
			}
			calls = append(calls, c)
		}
		rest := q.pending[n:]
		q.pending = append(q.pending[:0:0], rest...)
		b.mu.Unlock()
		for _, c := range gone {
			b.drop(key, c)
		}
		if len(calls) == 0 {
			continue
		}
		b.flushCalls(key, calls)
	}
}

func (b *Batcher[K, Req, Res]) flushCalls(key K, calls []*call[Req, Res]) {
	reqs := make([]Req, len(calls))
	for i, c := range calls {
		reqs[i] = c.req
	}
	start := time.Now()
	// The batch runs to completion even if its callers leave: a half-done
	// group commit is worse than an unwanted one.
	res, err := b.flush(context.WithoutCancel(calls[0].ctx), key, reqs)
	if err == nil && len(res) != len(reqs) {
		err = errors.New("batch: flush returned the wrong number of results")
	}
	if b.opts.Observe != nil {
		b.opts.Observe(len(reqs), time.Since(start), err)
	}
	if err != nil && len(calls) > 1 && b.opts.Isolate != nil && b.opts.Isolate(err) {
		// Nothing of the failed batch was written; each request now
		// gets its own flush, and its own outcome. A caller that gave up
		// meanwhile is answered without a write, as in run.
		for _, c := range calls {
			if c.ctx.Err() != nil {
				b.drop(key, c)
				continue
			}
			b.flushCalls(key, []*call[Req, Res]{c})
		}
		return
	}
	var leftReqs []Req
	var leftRes []Res
	for i, c := range calls {
		if err != nil {
			c.deliver(result[Res]{err: err})
			continue
		}
		if !c.deliver(result[Res]{res: res[i]}) {
			leftReqs, leftRes = append(leftReqs, c.req), append(leftRes, res[i])
		}
	}
	if len(leftReqs) > 0 && b.abandoned != nil {
		b.abandoned(key, leftReqs, leftRes)
	}
}

// Close stops accepting requests and waits for queued ones to be flushed.
func (b *Batcher[K, Req, Res]) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}
