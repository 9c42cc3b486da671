// Package testkit holds what tests of several packages share: a log
// buffer safe for concurrent writers and a settable clock.
package testkit

import (
	"bytes"
	"sync"
)

// Buffer is a log destination safe for concurrent writes while the test
// reads it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
