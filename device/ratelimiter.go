package device

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter limits handshake messages per source while the device is
// under load, as the kernel's ratelimiter.c: a token bucket per IPv4
// address or IPv6 /64, 20 packets a second with a burst of 5. Entries idle
// for a second are swept lazily, on use, so an idle device has no timer.
type rateLimiter struct {
	mu        sync.Mutex
	buckets   map[netip.Addr]*bucket
	lastSweep time.Time
}

const (
	rlPacketsPerSecond = 20
	rlBurst            = 5
	rlPacketCost       = time.Second / rlPacketsPerSecond
	rlMaxTokens        = rlPacketCost * rlBurst
	rlMaxEntries       = 1 << 16
)

type bucket struct {
	last   time.Time
	tokens time.Duration
}

func newRateLimiter() *rateLimiter {
	return &rateLimiter{buckets: make(map[netip.Addr]*bucket)}
}

// allow reports whether one more handshake from src may be processed now.
func (r *rateLimiter) allow(src netip.Addr, now time.Time) bool {
	key := src.Unmap()
	if key.Is6() {
		key = netip.PrefixFrom(key, 64).Masked().Addr()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) >= time.Second {
		r.sweep(now)
	}
	b, ok := r.buckets[key]
	if !ok {
		if len(r.buckets) >= rlMaxEntries {
			return false
		}
		r.buckets[key] = &bucket{last: now, tokens: rlMaxTokens - rlPacketCost}
		return true
	}
	b.tokens = min(rlMaxTokens, b.tokens+now.Sub(b.last))
	b.last = now
	if b.tokens < rlPacketCost {
		return false
	}
	b.tokens -= rlPacketCost
	return true
}

func (r *rateLimiter) sweep(now time.Time) {
	r.lastSweep = now
	for k, b := range r.buckets {
		if now.Sub(b.last) >= time.Second {
			delete(r.buckets, k)
		}
	}
}
