package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"

	"github.com/allot/allot"
)

var _ allot.Notifier = (*Store)(nil)

// notices is the in-process notifier of one database file: what
// PostgreSQL's LISTEN/NOTIFY is across processes. A SQLite database is
// served by one process, so every Service that can see a change (through
// any Store opened on the file) is one of its listeners.
type notices struct {
	mu   sync.Mutex
	subs map[*listener]struct{}
}

type listener struct {
	topics []string
	ch     chan notice
	lost   chan struct{} // closed when a notice could not be queued
	once   sync.Once
}

type notice struct{ topic, payload string }

// listenerQueue is how many notices a listener may fall behind by before
// it is told it lost some.
const listenerQueue = 1024

// noticesByPath shares one notifier between the Stores of one file.
var noticesByPath sync.Map // absolute path -> *notices

func noticesFor(path string) *notices {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	v, _ := noticesByPath.LoadOrStore(path, &notices{})
	return v.(*notices)
}

var errNoticesLost = errors.New("sqlite: a listener fell behind and lost notices")

// Listen calls fn with every notice on topics published by this Store
// after a commit, until ctx ends.
func (s *Store) Listen(ctx context.Context, topics []string, fn func(topic, payload string)) error {
	l := &listener{topics: topics, ch: make(chan notice, listenerQueue), lost: make(chan struct{})}
	s.notices.mu.Lock()
	if s.notices.subs == nil {
		s.notices.subs = map[*listener]struct{}{}
	}
	s.notices.subs[l] = struct{}{}
	s.notices.mu.Unlock()
	defer func() {
		s.notices.mu.Lock()
		delete(s.notices.subs, l)
		s.notices.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n := <-l.ch:
			fn(n.topic, n.payload)
		case <-l.lost:
			return errNoticesLost
		}
	}
}

// publish tells the listeners of topic, without waiting for them. It is
// called after the change committed.
func (s *Store) publish(topic, payload string) {
	s.notices.mu.Lock()
	defer s.notices.mu.Unlock()
	for l := range s.notices.subs {
		if !slices.Contains(l.topics, topic) {
			continue
		}
		select {
		case l.ch <- notice{topic, payload}:
		default:
			l.once.Do(func() { close(l.lost) })
		}
	}
}
