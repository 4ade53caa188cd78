package ipc

import (
	"sync/atomic"

	"github.com/wgdvpn/wgd/device"
)

// Stats counts what the listener refused, by reason. Each refusal is also
// logged, at most once per reason every few seconds, so a client looping on
// bad requests cannot flood the log; these counts say how many there were.
type Stats struct {
	// SetRejected counts set requests refused whole (a bad line, a request
	// over the limits, a truncated request, or a device that refused the
	// configuration): none of them changed anything.
	SetRejected uint64 `json:"uapi_set_rejected"`
	// GetFailed counts get (and wgd_counters) requests answered with an
	// error.
	GetFailed uint64 `json:"uapi_get_failed"`
	// BadOperation counts connections closed because an operation line
	// was neither get=1, set=1 nor wgd_counters=1.
	BadOperation uint64 `json:"uapi_bad_operation"`
	// ConnsRefused counts connections closed at once because
	// Limits.MaxConns were open.
	ConnsRefused uint64 `json:"uapi_conns_refused"`
	// ReadErrors counts connections that failed between operations: an
	// idle timeout, a reset, an over-long operation line.
	ReadErrors uint64 `json:"uapi_read_errors"`
}

// stats is the live form of Stats.
type stats struct {
	setRejected, getFailed, badOperation, connsRefused, readErrors atomic.Uint64
}

func (s *stats) snapshot() Stats {
	return Stats{
		SetRejected:  s.setRejected.Load(),
		GetFailed:    s.getFailed.Load(),
		BadOperation: s.badOperation.Load(),
		ConnsRefused: s.connsRefused.Load(),
		ReadErrors:   s.readErrors.Load(),
	}
}

// Stats returns what the listener has refused so far.
func (l *Listener) Stats() Stats { return l.stats.snapshot() }

// Counters is the reply to wgd_counters=1: the device's drop counters and
// the listener's refusals, flattened into one JSON object.
type Counters struct {
	device.CountersSnapshot
	Stats
}
