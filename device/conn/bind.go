package conn

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Read receives up to len(msgs) datagrams (at most MaxBatch) from fd with
// one recvmmsg(2), without blocking. It returns 0 and ErrWouldBlock when
// nothing is queued. Each msgs[i].Buf is borrowed for the call only.
func (b *Bind) Read(fd int, msgs []Message) (int, error) {
	if fd < 0 || (int32(fd) != b.fd4.Load() && int32(fd) != b.fd6.Load()) {
		if b.fd4.Load() < 0 {
			return 0, ErrClosed
		}
		return 0, ErrBadFd
	}
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
		if errno == unix.EAGAIN {
			return 0, ErrWouldBlock
		}
		return 0, fmt.Errorf("conn: recvmmsg: %w", errno)
	}
	for i := 0; i < n; i++ {
		b.rx.result(i, &msgs[i])
	}
	return n, nil
}

// Write sends msgs with sendmmsg(2), one call per run of consecutive
// datagrams of one address family (at most MaxBatch each), and returns how
// many it consumed. When a socket buffer is full it stops: n < len(msgs)
// and errors.Is(err, ErrWouldBlock). A datagram with Ep.Src set that fails
// because that source is gone gets Ep.Src and Ep.Ifindex cleared and is
// retried once without them; the caller sees the cleared Src and drops its
// stickiness. A datagram that fails for any other reason (no route,
// firewall, invalid endpoint) is dropped and counted in n, and the first
// such error is returned, so one bad peer cannot stall the batch.
func (b *Bind) Write(msgs []Message) (int, error) {
	if b.fd4.Load() < 0 {
		return 0, ErrClosed
	}
	var dropped error
	i := 0
	for i < len(msgs) {
		fam := family(msgs[i].Ep.Dst)
		fd := b.fdFor(fam)
		if fd < 0 {
			dropped = firstErr(dropped, b.noSocket(i, fam))
			i++
			continue
		}
		k := 0
		for k < MaxBatch && i+k < len(msgs) && family(msgs[i+k].Ep.Dst) == fam {
			if !b.tx.prepSend(k, &msgs[i+k]) {
				break
			}
			k++
		}
		if k == 0 {
			dropped = firstErr(dropped, fmt.Errorf("conn: message %d: %w", i, ErrBadEndpoint))
			i++
			continue
		}
		n, errno := sendmmsg(fd, &b.tx.hdrs[0], k, unix.MSG_DONTWAIT)
		b.tx.release(k)
		switch {
		case n > 0:
			i += n
		case errno == unix.EINTR:
		case errno == unix.EAGAIN:
			return i, joinWouldBlock(dropped)
		case msgs[i].Ep.Src.IsValid() && sourceGone(errno):
			msgs[i].Ep.Src, msgs[i].Ep.Ifindex = netip.Addr{}, 0
		default:
			dropped = firstErr(dropped, fmt.Errorf("conn: sendmmsg message %d: %w", i, errno))
			i++
		}
	}
	return i, dropped
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
			ep.Src, ep.Ifindex = netip.Addr{}, 0
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
