package conn

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Read receives up to len(msgs) datagrams (at most MaxBatch) from fd
// without blocking. It returns 0 and ErrWouldBlock when nothing is queued.
// Each msgs[i].Buf is borrowed for the call only. With UDP GRO on, a
// coalesced datagram comes back split into consecutive messages with the
// same Ep, each with its own Buf; segments that do not fit are kept and
// returned first by the next Read on fd, so poll fd again after a Read
// that filled msgs. Without GRO one recvmmsg(2) reads the whole batch.
func (b *Bind) Read(fd int, msgs []Message) (int, error) {
	var o *offload
	switch {
	case fd >= 0 && int32(fd) == b.fd4.Load():
		o = &b.off4
	case fd >= 0 && int32(fd) == b.fd6.Load():
		o = &b.off6
	case b.fd4.Load() < 0:
		return 0, ErrClosed
	default:
		return 0, ErrBadFd
	}
	msgs = msgs[:min(len(msgs), MaxBatch)]
	if len(msgs) == 0 {
		return 0, nil
	}
	if o.carry != nil {
		return b.readGRO(fd, o.carry, msgs)
	}
	return b.recvBatch(fd, msgs)
}

// recvBatch receives up to len(msgs) datagrams with one recvmmsg(2), each
// whole; msgs[i].Seg is the GRO segment size of a coalesced one (0 when
// UDP_GRO is off or the datagram was not coalesced).
func (b *Bind) recvBatch(fd int, msgs []Message) (int, error) {
	k := min(len(msgs), MaxBatch)
	if k == 0 {
		return 0, nil
	}
	for i := 0; i < k; i++ {
		b.rx.prepRecv(i, msgs[i].Buf)
	}
	n, errno := recvmmsg(fd, &b.rx.hdrs[0], k, unix.MSG_DONTWAIT)
	for errno == unix.EINTR {
		n, errno = recvmmsg(fd, &b.rx.hdrs[0], k, unix.MSG_DONTWAIT)
	}
	b.rx.release(k)
	if errno != 0 {
		return 0, recvError(0, errno)
	}
	for i := 0; i < n; i++ {
		m := &msgs[i]
		m.Seg = b.rx.result(i, m)
		if m.Seg >= m.N {
			m.Seg = 0
		}
		if m.Seg > 0 {
			b.stats.groDatagrams.Add(1)
		}
	}
	return n, nil
}

// ReadCoalesced is Read without the splitting: one recvmmsg(2) of up to
// len(msgs) datagrams, each left whole. A datagram the kernel coalesced
// (UDP_GRO) arrives as one message whose Seg gives the segment size, and
// the caller walks its segments in place: no copies, and a full batch per
// system call whether or not the sender used GSO. Buffers should hold
// 64 KiB, or a coalesced datagram is reported with N == 0 (dropped). It
// must not be mixed with Read on the same fd (Read may hold segments back).
func (b *Bind) ReadCoalesced(fd int, msgs []Message) (int, error) {
	if fd < 0 || (int32(fd) != b.fd4.Load() && int32(fd) != b.fd6.Load()) {
		if b.fd4.Load() < 0 {
			return 0, ErrClosed
		}
		return 0, ErrBadFd
	}
	return b.recvBatch(fd, msgs)
}

// Write sends msgs with sendmmsg(2), one call per run of consecutive
// datagrams of one address family (at most MaxBatch each), and returns how
// many it consumed. With UDP GSO on, consecutive datagrams to the same
// endpoint with equal sizes (the last may be shorter) leave as one GSO
// datagram gathered from their buffers, which the kernel cuts back into
// the same datagrams on the wire. When a socket buffer is full it stops:
// n < len(msgs) and errors.Is(err, ErrWouldBlock). A datagram with Ep.Src
// set that fails because that source is gone gets Ep.Src and Ep.Ifindex
// cleared and is retried once without them; the caller sees the cleared
// Src and drops its stickiness. A datagram that fails for any other reason
// (no route, firewall, invalid endpoint) is dropped, counted in n and
// marked with N = -1 (callers count only the others as sent), and the
// first such error is returned, so one bad peer cannot stall the batch.
// A route that can never take GSO (EIO) turns it off for the socket; one
// that refuses a GSO datagram with EINVAL or EMSGSIZE that goes out
// without GSO (segments larger than the path's MTU) turns it off for
// datagrams of that size and larger only, until ResetGSOLimit or
// gsoRetryAfter such datagrams later. Either is logged once, and the
// datagrams are resent without GSO.
func (b *Bind) Write(msgs []Message) (int, error) {
	if b.fd4.Load() < 0 {
		return 0, ErrClosed
	}
	var dropped error
	suspect := false
	var suspectErr unix.Errno
	i := 0
	for i < len(msgs) {
		fam := family(msgs[i].Ep.Dst)
		fd := b.fdFor(fam)
		if fd < 0 {
			dropped = firstErr(dropped, b.noSocket(i, fam))
			msgs[i].N = -1
			i++
			continue
		}
		o := b.offFor(fam)
		j, used := b.prepRun(msgs[i:], fam, o.gso.Load() && !suspect, int(o.gsoBelow.Load()))
		if j == 0 {
			dropped = firstErr(dropped, fmt.Errorf("conn: message %d: %w", i, ErrBadEndpoint))
			msgs[i].N = -1
			i++
			continue
		}
		n, errno := sendmmsg(fd, &b.tx.hdrs[0], j, unix.MSG_DONTWAIT)
		b.tx.release(used)
		wasSuspect := suspect
		suspect = false
		if n > 0 {
			if wasSuspect {
				b.limitGSO(fam, len(msgs[i].Buf), suspectErr)
			}
			b.countGSO(n)
			i += b.tx.consumed(n)
			continue
		}
		if errno == unix.EAGAIN {
			return i, joinWouldBlock(dropped)
		}
		var skip int
		skip, suspect = b.sendFailed(msgs[i:i+b.tx.segs[0]], fam, errno)
		if suspect {
			suspectErr = errno
		}
		suspect = suspect || (wasSuspect && errno == unix.EINTR)
		if skip > 0 {
			dropped = firstErr(dropped, fmt.Errorf("conn: sendmmsg message %d: %w", i, errno))
			for k := i; k < i+skip; k++ {
				msgs[k].N = -1
			}
			i += skip
		}
	}
	return i, dropped
}

// prepRun prepares the headers for one sendmmsg: the messages from the
// start of msgs that share family fam, grouped into GSO datagrams when gso
// is set. It returns the headers and the messages (iovecs) they use.
func (b *Bind) prepRun(msgs []Message, fam int, gso bool, below int) (hdrs, used int) {
	for used < MaxBatch && used < len(msgs) && family(msgs[used].Ep.Dst) == fam {
		limited := gso && below != 0 && len(msgs[used].Buf) >= below
		c := b.tx.prepGroup(hdrs, used, msgs[used:], gso && !limited, MaxBatch-used)
		if c == 0 {
			break
		}
		if limited {
			b.offFor(fam).limitedSend()
		}
		hdrs++
		used += c
	}
	return hdrs, used
}

// sendFailed decides what to do with the first header of a sendmmsg that
// sent nothing; group is the caller's messages in it. It returns how many
// messages to drop (0: retry them) and whether to retry without GSO to see
// if GSO was at fault.
func (b *Bind) sendFailed(group []Message, fam int, errno unix.Errno) (skip int, suspect bool) {
	if errno == unix.EINTR {
		return 0, false
	}
	if len(group) > 1 {
		definite, maybe := gsoFault(errno)
		if definite {
			b.disableGSO(fam, errno)
			return 0, false
		}
		if maybe {
			return 0, true
		}
	}
	if group[0].Ep.Src.IsValid() && sourceGone(errno) {
		clearSource(group)
		return 0, false
	}
	return len(group), false
}

// Send sends one datagram without blocking (a full buffer drops it and
// returns ErrWouldBlock). It is safe for concurrent use with Read and
// Write, and follows Write's rule for a stale ep.Src, clearing it in *ep.
func (b *Bind) Send(buf []byte, ep *Endpoint) error {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	if b.closed {
		return ErrClosed
	}
	fd := b.fdFor(family(ep.Dst))
	if fd < 0 {
		return b.noSocket(0, family(ep.Dst))
	}
	for {
		if !b.one.prep(buf, ep) {
			return ErrBadEndpoint
		}
		errno := sendmsg(fd, &b.one.hdr, unix.MSG_DONTWAIT)
		b.one.iov.Base = nil
		switch {
		case errno == 0:
			return nil
		case errno == unix.EINTR:
		case errno == unix.EAGAIN:
			return ErrWouldBlock
		case ep.Src.IsValid() && sourceGone(errno):
			ep.ClearSource()
		default:
			return fmt.Errorf("conn: sendmsg to %v: %w", ep.Dst, errno)
		}
	}
}

// sourceGone reports the errnos the kernel gives for a pktinfo source that
// is no longer one of our addresses, or no longer routable from where the
// route now leads.
func sourceGone(errno unix.Errno) bool {
	switch errno {
	case unix.EINVAL, unix.EADDRNOTAVAIL, unix.ENETUNREACH, unix.EHOSTUNREACH, unix.ENODEV, unix.ENXIO:
		return true
	}
	return false
}

func (b *Bind) fdFor(fam int) int {
	if fam == unix.AF_INET {
		return int(b.fd4.Load())
	}
	return int(b.fd6.Load())
}

func (b *Bind) noSocket(i, fam int) error {
	if b.fd4.Load() < 0 {
		return ErrClosed
	}
	return fmt.Errorf("conn: message %d, family %d: %w", i, fam, ErrNoSocket)
}

func firstErr(have, next error) error {
	if have != nil {
		return have
	}
	return next
}

// joinWouldBlock returns ErrWouldBlock itself when nothing was dropped, so
// the common case does not allocate.
func joinWouldBlock(dropped error) error {
	if dropped == nil {
		return ErrWouldBlock
	}
	return errors.Join(dropped, ErrWouldBlock)
}
