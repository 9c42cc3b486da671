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
