// Package ratelog lets through at most one log line per reason per
// interval, so that a flood of bad input (from the network or from a UAPI
// client) cannot flood the log. The reasons are fixed strings chosen by the
// caller, so the set it tracks stays small.
package ratelog

import (
	"sync"
	"time"
)

// DefaultInterval is the interval of a Limiter whose Interval is zero.
const DefaultInterval = 5 * time.Second

// A Limiter decides which log lines pass. Its zero value is ready to use
// and safe for concurrent use.
type Limiter struct {
	// Interval is the least time between two lines of one reason; zero
	// means DefaultInterval. Set it before the first Allow.
	Interval time.Duration

	mu   sync.Mutex // guards last
	last map[string]entry
}

type entry struct {
	at         time.Time // when the last line of this reason passed
	suppressed uint64    // lines held back since then
}

// Allow reports whether a line for reason may be logged at now and, when it
// may, how many lines of that reason were held back since the last one that
// passed (so the line can say so).
func (l *Limiter) Allow(reason string, now time.Time) (bool, uint64) {
	every := l.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = make(map[string]entry)
	}
	e, seen := l.last[reason]
	if seen && now.Sub(e.at) < every {
		e.suppressed++
		l.last[reason] = e
		return false, 0
	}
	l.last[reason] = entry{at: now}
	return true, e.suppressed
}
