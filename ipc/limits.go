package ipc

import "time"

// Limits bounds what one client can make the daemon read and hold. The
// defaults accept `wg setconf` of 1,000,000 peers with endpoints and a few
// allowed IPs each (about 150-400 MB of text in one request), while keeping
// the memory a single request can pin bounded: lines are never retained, so
// what a request costs is its parsed peers and allowed IPs.
type Limits struct {
	// MaxLineBytes bounds one line including its newline. The longest
	// valid line is far shorter (an endpoint with a zone, ~100 bytes); the
	// default is wireguard-go's bound (bufio.Scanner's 64 KiB buffer), so
	// that a long line gets the errno wireguard-go gives it: EINVAL or
	// EPROTO for a bad line up to the bound, EIO past it.
	MaxLineBytes int
	// MaxRequestBytes bounds one set request.
	MaxRequestBytes int64
	// MaxPeers bounds the peer sections of one set request.
	MaxPeers int
	// MaxAllowedIPs bounds the allowed_ip lines of one set request (and
	// of one get reply read by the client).
	MaxAllowedIPs int
	// IdleTimeout closes a connection that sends or accepts nothing for
	// this long, whether it is between operations or in the middle of one.
	IdleTimeout time.Duration
	// MaxConns bounds concurrent connections; more are closed at once.
	MaxConns int
	// MaxUnreadReplyBytes bounds the get reply bytes built but not yet
	// written to their clients, over all connections: past it a get waits
	// (up to IdleTimeout) before its reply is built (replyBudget).
	MaxUnreadReplyBytes int64
}

// Default limits; a zero field in Limits means the default.
const (
	DefaultMaxLineBytes    = 64 << 10
	DefaultMaxRequestBytes = 1 << 30
	DefaultMaxPeers        = 2_000_000
	DefaultMaxAllowedIPs   = 4_000_000
	DefaultIdleTimeout     = time.Minute
	DefaultMaxConns        = 64
	DefaultMaxUnreadReply  = 64 << 20
)

// withDefaults fills zero (or negative) fields with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if l.MaxPeers <= 0 {
		l.MaxPeers = DefaultMaxPeers
	}
	if l.MaxAllowedIPs <= 0 {
		l.MaxAllowedIPs = DefaultMaxAllowedIPs
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxUnreadReplyBytes <= 0 {
		l.MaxUnreadReplyBytes = DefaultMaxUnreadReply
	}
	return l
}
