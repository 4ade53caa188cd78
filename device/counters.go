package device

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/wgdvpn/wgd/internal/ratelog"
)

// Counters count drops by reason and traffic. Every field is atomic, so any
// goroutine may add to it.
type Counters struct {
	badLength        atomic.Uint64
	badType          atomic.Uint64
	invalidMAC1      atomic.Uint64
	invalidMAC2      atomic.Uint64
	cookieSent       atomic.Uint64
	rateLimited      atomic.Uint64
	handshakeFailed  atomic.Uint64
	unknownPeer      atomic.Uint64
	unknownIndex     atomic.Uint64
	decryptFailed    atomic.Uint64
	replay           atomic.Uint64
	sourceNotAllowed atomic.Uint64
	badInnerPacket   atomic.Uint64
	noRoute          atomic.Uint64
	routingLoop      atomic.Uint64
	noKey            atomic.Uint64
	stagingOverflow  atomic.Uint64
	handshakeBacklog atomic.Uint64
	sendErrors       atomic.Uint64
	tunWriteErrors   atomic.Uint64
	tunReadErrors    atomic.Uint64
	handshakesDone   atomic.Uint64
}

// CountersSnapshot is a copy of the counters, with JSON names for
// `wgd show --json`.
type CountersSnapshot struct {
	BadLength         uint64 `json:"bad_length"`
	BadType           uint64 `json:"bad_type"`
	InvalidMAC1       uint64 `json:"invalid_mac1"`
	InvalidMAC2       uint64 `json:"invalid_mac2"`
	CookieRepliesSent uint64 `json:"cookie_replies_sent"`
	RateLimited       uint64 `json:"rate_limited"`
	HandshakeFailed   uint64 `json:"handshake_failed"`
	UnknownPeer       uint64 `json:"unknown_peer"`
	UnknownIndex      uint64 `json:"unknown_index"`
	DecryptFailed     uint64 `json:"decrypt_failed"`
	Replay            uint64 `json:"replay"`
	SourceNotAllowed  uint64 `json:"source_not_allowed"`
	BadInnerPacket    uint64 `json:"bad_inner_packet"`
	NoRoute           uint64 `json:"no_route"`
	RoutingLoop       uint64 `json:"routing_loop"`
	NoKey             uint64 `json:"no_key"`
	StagingOverflow   uint64 `json:"staging_overflow"`
	HandshakeBacklog  uint64 `json:"handshake_backlog_full"`
	SendErrors        uint64 `json:"send_errors"`
	TUNWriteErrors    uint64 `json:"tun_write_errors"`
	TUNReadErrors     uint64 `json:"tun_read_errors"`
	HandshakesDone    uint64 `json:"handshakes_completed"`
}

func (c *Counters) snapshot() CountersSnapshot {
	return CountersSnapshot{
		BadLength:         c.badLength.Load(),
		BadType:           c.badType.Load(),
		InvalidMAC1:       c.invalidMAC1.Load(),
		InvalidMAC2:       c.invalidMAC2.Load(),
		CookieRepliesSent: c.cookieSent.Load(),
		RateLimited:       c.rateLimited.Load(),
		HandshakeFailed:   c.handshakeFailed.Load(),
		UnknownPeer:       c.unknownPeer.Load(),
		UnknownIndex:      c.unknownIndex.Load(),
		DecryptFailed:     c.decryptFailed.Load(),
		Replay:            c.replay.Load(),
		SourceNotAllowed:  c.sourceNotAllowed.Load(),
		BadInnerPacket:    c.badInnerPacket.Load(),
		NoRoute:           c.noRoute.Load(),
		RoutingLoop:       c.routingLoop.Load(),
		NoKey:             c.noKey.Load(),
		StagingOverflow:   c.stagingOverflow.Load(),
		HandshakeBacklog:  c.handshakeBacklog.Load(),
		SendErrors:        c.sendErrors.Load(),
		TUNWriteErrors:    c.tunWriteErrors.Load(),
		TUNReadErrors:     c.tunReadErrors.Load(),
		HandshakesDone:    c.handshakesDone.Load(),
	}
}

// logLimiter logs dropped packets at most once per reason per interval, so
// a flood of bad packets cannot flood the log; the line that passes says how
// many of its kind were held back.
type logLimiter struct {
	lim ratelog.Limiter
}

// allow reports whether a line for reason may be logged now, and how many
// were held back since the last. Callers build the line's arguments only
// when it is: boxing them for a line the limiter then drops would cost an
// allocation per dropped packet.
func (l *logLimiter) allow(reason string, now time.Time) (held uint64, ok bool) {
	ok, held = l.lim.Allow(reason, now)
	return held, ok
}

// debugLogs reports whether drop lines (debug level) would be written at
// all. The drop paths that a flood runs through (a full handshake backlog,
// bad lengths and types, unknown indices) ask first: the limiter's lock
// and map would otherwise cost the loop time on every dropped datagram for
// lines nobody sees.
func (d *Device) debugLogs() bool {
	return d.log.Enabled(context.Background(), slog.LevelDebug)
}

// logDropFrom logs a drop of a datagram from a network address, within the
// limit; its arguments (and the time) are taken only for a line that
// passes.
func (d *Device) logDropFrom(reason string, from netip.AddrPort) {
	if !d.debugLogs() {
		return
	}
	if held, ok := d.logLim.allow(reason, d.clock.Now()); ok {
		logDrop(d.log, reason, held, "from", from)
	}
}

// logDropPeer is logDropFrom for a drop on the way to or from a peer.
func (d *Device) logDropPeer(reason string, p *Peer) {
	if !d.debugLogs() {
		return
	}
	if held, ok := d.logLim.allow(reason, d.clock.Now()); ok {
		logDrop(d.log, reason, held, "peer", p.short())
	}
}

// logDrop writes the line allow let through.
func logDrop(log *slog.Logger, reason string, held uint64, args ...any) {
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	log.Debug("dropped packet", append([]any{"reason", reason}, args...)...)
}
