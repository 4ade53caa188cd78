package conn

import (
	"log/slog"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Options are the optional settings of OpenWith. The zero value is what
// Open uses: offloads wherever the kernel has them, logs to slog.Default().
type Options struct {
	// Log receives the one-time notices about offloads the kernel or a
	// route lacks. Nil means slog.Default().
	Log *slog.Logger
	// NoGSO and NoGRO keep the offloads off even where the kernel has
	// them: for comparison benchmarks, tests, and as an escape hatch.
	NoGSO, NoGRO bool
}

// offload is the per-socket offload state. gso is read by Write (loop
// goroutine) and Offloads (any goroutine) and cleared by Write when a route
// refuses GSO, hence atomic. gro is fixed at Open. carry holds the part of
// a coalesced datagram that did not fit the caller's messages; it is owned
// by the loop goroutine (Read) and nil when GRO is off.
type offload struct {
	gso atomic.Bool
	// gsoBelow, when not 0, keeps datagrams of that many bytes or more out
	// of GSO: a datagram of that size was refused with GSO and went out
	// without it (see Write).
	gsoBelow atomic.Int32
	// limited counts datagrams kept out of GSO by gsoBelow since it was
	// set; at gsoRetryAfter the limit is lifted and GSO tried again.
	limited atomic.Uint32
	// gsoLogged is the last limit logged, so that a limit set again after
	// a retry the path still refuses is not logged again.
	gsoLogged atomic.Int32
	gro       bool
	carry     *carry
}

// probeOffloads turns on what the kernel has on a bound socket and says
// what it found. UDP_SEGMENT (Linux 4.18) has no switch: a getsockopt that
// succeeds means the send-side cmsg is understood. Older kernels would
// silently ignore the cmsg and send one oversized datagram, which is why
// the probe must come first. UDP_GRO (Linux 5.0) is a socket option.
func probeOffloads(fd int, opts Options) (gso, gro bool) {
	if !opts.NoGSO {
		_, err := unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		gso = err == nil
	}
	if !opts.NoGRO {
		gro = unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	}
	return gso, gro
}

// initOffload probes fd and records the result in o, logging once (at
// Open) what the kernel lacks.
func (b *Bind) initOffload(o *offload, fd, fam int, opts Options) {
	gso, gro := probeOffloads(fd, opts)
	o.gso.Store(gso)
	o.gro = gro
	if gro {
		o.carry = new(carry)
	}
	if !gso && !opts.NoGSO {
		b.log.Info("UDP GSO not supported by the kernel, sending datagrams one by one", "family", famName(fam))
	}
	if !gro && !opts.NoGRO {
		b.log.Info("UDP GRO not supported by the kernel, receiving datagrams one by one", "family", famName(fam))
	}
}

// disableGSO turns GSO off on one socket after a route refused it, and
// logs that once: only the call that flips the flag logs.
func (b *Bind) disableGSO(fam int, errno unix.Errno) {
	if b.offFor(fam).gso.CompareAndSwap(true, false) {
		b.log.Info("UDP GSO refused on this path, turned off for the socket", "family", famName(fam), "err", errno)
	}
}

// limitGSO keeps datagrams of size bytes and larger out of GSO on one
// socket: such a GSO datagram was refused (errno) and the same datagrams
// went out one by one. Segments larger than the path's MTU do that (a
// TUN MTU above the underlay's, for a while); smaller datagrams keep GSO.
// A lower limit replaces a higher one, and each new limit is logged once.
func (b *Bind) limitGSO(fam, size int, errno unix.Errno) {
	o := b.offFor(fam)
	for {
		cur := o.gsoBelow.Load()
		if cur != 0 && int(cur) <= size {
			return
		}
		if o.gsoBelow.CompareAndSwap(cur, int32(size)) {
			o.limited.Store(0)
			if o.gsoLogged.Swap(int32(size)) != int32(size) {
				b.log.Info("UDP GSO refused on this path for datagrams this large, sending them one by one",
					"family", famName(fam), "bytes", size, "err", errno)
			}
			return
		}
	}
}

// gsoRetryAfter is how many datagrams go out one by one under a size limit
// before GSO is tried for them again: the path may have grown back (an
// underlay MTU raised again), and the limit used to stay until the TUN's
// MTU changed, at a third of the throughput. A retry the path still
// refuses costs one refused sendmmsg and sets the limit again, unlogged.
const gsoRetryAfter = 4096

// limitedSend counts one datagram kept out of GSO by the size limit and
// lifts the limit after gsoRetryAfter of them.
func (o *offload) limitedSend() {
	if o.limited.Add(1) >= gsoRetryAfter {
		o.limited.Store(0)
		o.gsoBelow.Store(0)
	}
}

// ResetGSOLimit lifts the size limits limitGSO set, so that the next large
// datagrams try GSO again: the device calls it when the TUN's MTU
// changes. Safe from any goroutine.
func (b *Bind) ResetGSOLimit() {
	for _, o := range []*offload{&b.off4, &b.off6} {
		o.gsoBelow.Store(0)
		o.gsoLogged.Store(0)
	}
}

func (b *Bind) offFor(fam int) *offload {
	if fam == unix.AF_INET {
		return &b.off4
	}
	return &b.off6
}

// Stats counts what the offloads did: datagrams sent as one UDP GSO
// datagram of several segments, and datagrams received coalesced by UDP
// GRO. For tests and diagnostics; any goroutine may read them.
type Stats struct {
	GSODatagrams uint64
	GRODatagrams uint64
}

// bindStats is the live form of Stats, updated once per sendmmsg or
// recvmmsg result, not per packet.
type bindStats struct {
	gsoDatagrams, groDatagrams atomic.Uint64
}

// Stats returns the offload counts so far.
func (b *Bind) Stats() Stats {
	return Stats{GSODatagrams: b.stats.gsoDatagrams.Load(), GRODatagrams: b.stats.groDatagrams.Load()}
}

// countGSO counts the GSO datagrams among the first n headers just sent.
func (b *Bind) countGSO(n int) {
	var k uint64
	for _, segs := range b.tx.segs[:n] {
		if segs > 1 {
			k++
		}
	}
	if k > 0 {
		b.stats.gsoDatagrams.Add(k)
	}
}

// Offloads reports whether UDP GSO (send) and UDP GRO (receive) are in use
// on every socket of the Bind. GSO can turn off after Open, when a route
// refuses it.
func (b *Bind) Offloads() (gso, gro bool) {
	gso, gro = b.off4.gso.Load(), b.off4.gro
	if len(b.fds) == 2 {
		gso = gso && b.off6.gso.Load()
		gro = gro && b.off6.gro
	}
	return gso, gro
}

func famName(fam int) string {
	if fam == unix.AF_INET {
		return "ipv4"
	}
	return "ipv6"
}
