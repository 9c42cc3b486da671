package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatchesShareFlushesInOrder checks that concurrent callers share
// flushes, each gets its own result, and requests keep arrival order.
func TestBatchesShareFlushesInOrder(t *testing.T) {
	var flushes atomic.Int64
	var mu sync.Mutex
	var order []int
	release := make(chan struct{})
	b := New(func(ctx context.Context, key string, reqs []int) ([]int, error) {
		if flushes.Add(1) == 1 {
			<-release // hold the first flush so the rest pile up
		}
		mu.Lock()
		order = append(order, reqs...)
		mu.Unlock()
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = r * 10
		}
		return out, nil
	}, Opts{})
	defer b.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if r, err := b.Do(context.Background(), "k", 0); err != nil || r != 0 {
			t.Errorf("first: %d %v", r, err)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	// Enqueue 1..50 in a known order while the first flush is held.
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if r, err := b.Do(context.Background(), "k", i); err != nil || r != i*10 {
				t.Errorf("request %d got %d %v", i, r, err)
			}
		}(i)
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := flushes.Load(); n > 3 {
		t.Fatalf("%d flushes for 51 requests: callers did not share transactions", n)
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			t.Fatalf("arrival order broken: %v", order)
		}
	}
}

func TestFlushErrorReachesEveryCaller(t *testing.T) {
	boom := errors.New("boom")
	b := New(func(ctx context.Context, key int, reqs []int) ([]int, error) { return nil, boom }, Opts{})
	defer b.Close()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Do(context.Background(), 1, 1); !errors.Is(err, boom) {
				t.Errorf("got %v", err)
			}
		}()
	}
	wg.Wait()
}

func TestWrongResultCountIsAnError(t *testing.T) {
	b := New(func(ctx context.Context, key int, reqs []int) ([]int, error) { return nil, nil }, Opts{})
	defer b.Close()
	if _, err := b.Do(context.Background(), 1, 1); err == nil {
		t.Fatal("a flush that loses results must fail its callers")
	}
}

func TestCancelledCallerIsDroppedBeforeTheWrite(t *testing.T) {
	var seen atomic.Int64
	hold := make(chan struct{})
	b := New(func(ctx context.Context, key int, reqs []int) ([]int, error) {
		for _, r := range reqs {
			if r == 1 {
				<-hold
			}
			seen.Add(int64(r))
		}
		return make([]int, len(reqs)), nil
	}, Opts{})
	defer b.Close()
	go b.Do(context.Background(), 1, 1)
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := b.Do(ctx, 1, 100); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	close(hold)
	b.Close()
	if seen.Load() != 1 {
		t.Fatalf("the cancelled request was written: %d", seen.Load())
	}
}

func TestClosedRejects(t *testing.T) {
	b := New(func(ctx context.Context, key int, reqs []int) ([]int, error) { return make([]int, len(reqs)), nil }, Opts{})
	b.Close()
	if _, err := b.Do(context.Background(), 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

// TestIsolateRunsRequestsAlone: a batch failing with an error Isolate
// accepts is flushed again one request at a time, so only the bad
// request's caller gets the error.
func TestIsolateRunsRequestsAlone(t *testing.T) {
	bad := errors.New("bad data")
	release := make(chan struct{})
	var flushes atomic.Int64
	b := New(func(ctx context.Context, key int, reqs []int) ([]int, error) {
		if flushes.Add(1) == 1 {
			<-release
		}
		for _, r := range reqs {
			if r < 0 {
				return nil, bad
			}
		}
		return append([]int(nil), reqs...), nil
	}, Opts{Isolate: func(err error) bool { return errors.Is(err, bad) }})
	defer b.Close()
	go b.Do(context.Background(), 1, 0) // holds the first flush so the rest batch up
	time.Sleep(20 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v := i + 1
			if i == 2 {
				v = -1
			}
			_, errs[i] = b.Do(context.Background(), 1, v)
		}(i)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if (i == 2) != (err != nil) {
			t.Fatalf("request %d: %v (only request 2 is bad)", i, err)
		}
	}
}

// TestAbandoned: a caller that gives up while its batch is written gets
// its context's error, and its result goes to OnAbandoned (so the writer
// can undo it); a caller that stays gets its result.
func TestAbandoned(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	b := New(func(ctx context.Context, key string, reqs []int) ([]int, error) {
		started <- struct{}{}
		<-release
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = r * 10
		}
		return out, nil
	}, Opts{})
	var mu sync.Mutex
	var gone []int
	b.OnAbandoned(func(key string, reqs []int, res []int) {
		mu.Lock()
		gone = append(gone, res...)
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Do(ctx, "k", 1)
		errc <- err
	}()
	<-started
	stay := make(chan int, 1)
	go func() {
		// Queued behind the first batch; it stays, so it is answered.
		r, _ := b.Do(context.Background(), "k", 2)
		stay <- r
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left got %v, want context.Canceled", err)
	}
	close(release)
	if r := <-stay; r != 20 {
		t.Fatalf("the caller that stayed got %d, want 20", r)
	}
	b.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(gone) != 1 || gone[0] != 10 {
		t.Fatalf("OnAbandoned got %v, want [10]: the written result of the caller that left", gone)
	}
}

// TestDroppedIsReported: a request whose caller gave up before its batch
// was written is handed to the OnDropped function, with its error.
func TestDroppedIsReported(t *testing.T) {
	hold := make(chan struct{})
	var dropped []int
	var droppedErr error
	b := New(func(ctx context.Context, key int, reqs []int) ([]int, error) {
		for _, r := range reqs {
			if r == 1 {
				<-hold
			}
		}
		return make([]int, len(reqs)), nil
	}, Opts{}).OnDropped(func(key, req int, err error) { dropped, droppedErr = append(dropped, req), err })
	go b.Do(context.Background(), 1, 1)
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := b.Do(ctx, 1, 100); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	close(hold)
	b.Close() // the writer has run: the dropped list is final
	if len(dropped) != 1 || dropped[0] != 100 || !errors.Is(droppedErr, context.Canceled) {
		t.Fatalf("dropped %v (%v), want [100] (context canceled)", dropped, droppedErr)
	}
}

// counterDB is a store for pipelined flushes: one write lock (FIFO, as
// the lock that orders a key's writes is), a counter, and the order in
// which batches committed. hook, if set, runs with the lock held, after
// Locked, and may fail the batch before anything is written; gate, if
// set, runs before the lock is taken.
type counterDB struct {
	lock    chan struct{}
	mu      sync.Mutex
	last    int
	order   []int
	entered chan []int
	inside  atomic.Int32
	most    atomic.Int32
	prevErr atomic.Int32 // flushes whose Ready said ErrPrevious
	gate    func(reqs []int)
	hook    func(reqs []int) error
}

func newCounterDB() *counterDB {
	return &counterDB{lock: make(chan struct{}, 1), entered: make(chan []int, 100)}
}

func (db *counterDB) flush(ctx context.Context, _ string, reqs []int, turn Turn) ([]int, error) {
	n := db.inside.Add(1)
	defer db.inside.Add(-1)
	for m := db.most.Load(); n > m && !db.most.CompareAndSwap(m, n); m = db.most.Load() {
	}
	db.entered <- reqs
	if db.gate != nil {
		db.gate(reqs)
	}
	db.lock <- struct{}{}
	defer func() { <-db.lock }()
	turn.Locked()
	if db.hook != nil {
		if err := db.hook(reqs); err != nil {
			return nil, err
		}
	}
	db.mu.Lock()
	base := db.last
	db.mu.Unlock()
	out := make([]int, len(reqs))
	for i := range reqs {
		out[i] = base + i + 1
	}
	if err := turn.Ready(ctx); err != nil {
		if errors.Is(err, ErrPrevious) {
			db.prevErr.Add(1)
		}
		return nil, err // rolled back: nothing applied
	}
	db.mu.Lock()
	db.last += len(reqs)
	db.order = append(db.order, reqs...)
	db.mu.Unlock()
	return out, nil
}

// TestPipelineOverlapsAndKeepsOrder: with two batches in flight, they
// overlap, never more than two, and the numbers follow the order the
// batches were formed in, gapless.
func TestPipelineOverlapsAndKeepsOrder(t *testing.T) {
	db := newCounterDB()
	db.hook = func([]int) error { time.Sleep(200 * time.Microsecond); return nil } // a commit's worth of work
	b := NewPipelined(db.flush, Opts{Pipeline: 2})
	defer b.Close()
	const n = 2000
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := b.Do(t.Context(), "k", i)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			got[i] = r
		})
	}
	wg.Wait()
	var formed []int
	for len(db.entered) > 0 {
		formed = append(formed, <-db.entered...)
	}
	if len(formed) != n || len(db.order) != n {
		t.Fatalf("%d requests formed into batches and %d committed, want %d each", len(formed), len(db.order), n)
	}
	for i, r := range db.order {
		if formed[i] != r {
			t.Fatalf("commit order %v differs from batch order %v at %d", db.order[:i+1], formed[:i+1], i)
		}
		if got[r] != i+1 {
			t.Fatalf("request %d, committed %d-th, got number %d", r, i+1, got[r])
		}
	}
	if m := db.most.Load(); m != 2 {
		t.Fatalf("at most %d flushes at once, want 2 (the pipeline's depth)", m)
	}
}

// waitPending waits until n requests queue for key behind the batches in
// flight.
func waitPending(t *testing.T, b *Batcher[string, int, int], key string, n int) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		q := b.queues[key]
		got := 0
		if q != nil {
			got = len(q.pending)
		}
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d requests pending, want %d", got, n)
		}
	}
}

// TestPipelineFailureWhileNextInFlight: batch k fails while batch k+1
// is in flight. k+1 must not commit ahead of k's requests: it rolls back
// (Ready says ErrPrevious), k's failure is dealt with as with one batch
// in flight (each request alone under Isolate, or the error to every
// caller), and only then do k+1's requests run, ahead of later ones.
func TestPipelineFailureWhileNextInFlight(t *testing.T) {
	errBad, errDown := errors.New("bad request"), errors.New("database down")
	for _, tc := range []struct {
		name    string
		fail    error
		want    map[int]int // request -> number
		wantErr map[int]error
		order   []int
	}{
		{"isolated", errBad, map[int]int{0: 1, 1: 2, 6: 3, 7: 4}, map[int]error{5: errBad}, []int{0, 1, 6, 7}},
		{"whole batch", errDown, map[int]int{0: 1, 6: 2, 7: 3}, map[int]error{1: errDown, 5: errDown}, []int{0, 6, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newCounterDB()
			lockFirst := make(chan struct{})
			releaseFirst := make(chan struct{})
			db.gate = func(reqs []int) {
				if reqs[0] == 0 {
					<-lockFirst // batch [0] holds off until 1 and 5 queue behind it
				}
			}
			var next []int
			db.hook = func(reqs []int) error {
				switch {
				case reqs[0] == 0:
					<-releaseFirst
				case reqs[0] == 1 && len(reqs) == 2:
					// Batch k = [1 5]: fail it only once k+1 = [6 7] is in flight.
					next = <-db.entered
					return tc.fail
				case reqs[0] == 5 && tc.fail == errBad:
					return errBad // 5 is the bad one, alone too
				}
				return nil
			}
			b := NewPipelined(db.flush, Opts{Pipeline: 2, Isolate: func(err error) bool { return errors.Is(err, errBad) }})
			defer b.Close()
			got, errs := map[int]int{}, map[int]error{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			do := func(i int) {
				wg.Go(func() {
					r, err := b.Do(t.Context(), "k", i)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs[i] = err
					} else {
						got[i] = r
					}
				})
			}
			do(0)
			if r := <-db.entered; r[0] != 0 {
				t.Fatalf("first batch %v", r)
			}
			do(1)
			waitPending(t, b, "k", 1)
			do(5)
			waitPending(t, b, "k", 2)
			close(lockFirst) // [0] locks; [1 5] starts and queues for the lock
			if r := <-db.entered; len(r) != 2 || r[0] != 1 || r[1] != 5 {
				t.Fatalf("batch k %v, want [1 5]", r)
			}
			do(6)
			waitPending(t, b, "k", 1)
			do(7)
			waitPending(t, b, "k", 2)
			close(releaseFirst) // [0] commits; [1 5] locks, [6 7] starts, [1 5] fails
			wg.Wait()
			if len(next) != 2 || next[0] != 6 || next[1] != 7 {
				t.Fatalf("batch k+1 %v, want [6 7] in flight as k failed", next)
			}
			if db.prevErr.Load() == 0 {
				t.Fatal("batch k+1 never heard ErrPrevious: the failure did not happen while it was in flight")
			}
			for i, w := range tc.want {
				if got[i] != w || errs[i] != nil {
					t.Errorf("request %d: number %d, err %v; want %d", i, got[i], errs[i], w)
				}
			}
			for i, w := range tc.wantErr {
				if !errors.Is(errs[i], w) {
					t.Errorf("request %d: err %v, want %v", i, errs[i], w)
				}
			}
			if len(db.order) != len(tc.order) {
				t.Fatalf("committed %v, want %v", db.order, tc.order)
			}
			for i := range tc.order {
				if db.order[i] != tc.order[i] {
					t.Fatalf("committed %v, want %v", db.order, tc.order)
				}
			}
		})
	}
}

// TestPipelineWithoutLockedRunsOneAtATime: a flush that never calls
// Locked (a store that can't say when it holds the lock) gets no overlap.
func TestPipelineWithoutLockedRunsOneAtATime(t *testing.T) {
	var inside, most atomic.Int32
	b := NewPipelined(func(ctx context.Context, _ string, reqs []int, turn Turn) ([]int, error) {
		n := inside.Add(1)
		defer inside.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(100 * time.Microsecond)
		return reqs, turn.Ready(ctx)
	}, Opts{Pipeline: 2, MaxBatch: 10}) // small batches: requests are always waiting

	defer b.Close()
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() {
			if r, err := b.Do(t.Context(), "k", i); err != nil || r != i {
				t.Errorf("request %d: %d %v", i, r, err)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Fatalf("%d flushes at once without Locked, want 1", m)
	}
}

// TestPipelineAbandonedUndoneBeforeNext: a caller of batch k leaves
// while k commits, with batch k+1 in flight. What k wrote for it is undone
// (OnAbandoned) before k+1 decides, as with one batch in flight: k+1 rolls
// back and runs again afterwards, so a number given back is the next one
// issued, not burnt.
func TestPipelineAbandonedUndoneBeforeNext(t *testing.T) {
	db := newCounterDB()
	go0 := make(chan struct{})
	db.hook = func(reqs []int) error {
		if reqs[0] == 0 {
			<-go0
		}
		return nil
	}
	var undone []int
	b := NewPipelined(db.flush, Opts{Pipeline: 2}).OnAbandoned(func(_ string, reqs []int, res []int) {
		db.mu.Lock()
		defer db.mu.Unlock()
		for i := len(res) - 1; i >= 0; i-- {
			if res[i] == db.last { // the tail goes back to the counter
				db.last--
			}
			undone = append(undone, reqs[i])
		}
	})
	defer b.Close()
	ctx0, cancel0 := context.WithCancel(t.Context())
	gone := make(chan error, 1)
	go func() { _, err := b.Do(ctx0, "k", 0); gone <- err }()
	<-db.entered
	got := make(chan int, 1)
	go func() {
		r, err := b.Do(t.Context(), "k", 1)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	if r := <-db.entered; r[0] != 1 {
		t.Fatalf("batch k+1 %v, want [1]", r)
	}
	cancel0()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller who left: %v", err)
	}
	close(go0)
	if r := <-got; r != 1 {
		t.Fatalf("the next caller got %d, want 1: the number given back must be the next issued", r)
	}
	if len(undone) != 1 || undone[0] != 0 || db.prevErr.Load() == 0 {
		t.Fatalf("undone %v, k+1 rolled back %d times; want [0] undone while k+1 was in flight", undone, db.prevErr.Load())
	}
}
