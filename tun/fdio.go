package tun

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// readBatch is how many packets one Read takes at most from a fd that
// delivers one packet per read(2). Reading several per call lets the loop
// amortise its per-batch work (lookups, job hand-off) over many packets.
const readBatch = 64

// readPackets reads up to min(len(bufs), readBatch) packets from the
// non-blocking fd, one read(2) each. It stops at the first EAGAIN. Errors
// after at least one packet are left for the next call, which sees them
// again: the fd state that caused them (deleted link) persists.
func readPackets(fd int, bufs [][]byte, sizes []int, offset int, drops *atomic.Uint64) (int, error) {
	n := 0
	var tooBig error
	for n < len(bufs) && n < len(sizes) && n < readBatch {
		m, err := rawReadExtra(fd, bufs[n][offset:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if n > 0 {
				return n, nil
			}
			if tooBig != nil {
				return 0, tooBig
			}
			return 0, mapErrno("read", err)
		}
		if m > len(bufs[n])-offset {
			// The packet did not fit: readv cut it, and it is lost.
			tooBig = ErrPacketTooBig
			if drops != nil {
				drops.Add(1)
			}
			continue
		}
		sizes[n] = m
		n++
	}
	return n, nil
}

// writePackets writes each bufs[i][offset:] with one write(2). It stops at
// EAGAIN (n < len(bufs), ErrWouldBlock) and at a deleted link. A packet the
// kernel refuses for itself (EINVAL for a malformed header, EMSGSIZE) is
// dropped and counted, so one bad packet cannot stall the queue; the first
// such error is returned with the final count.
func writePackets(fd int, bufs [][]byte, offset int) (int, error) {
	var dropped error
	for i := 0; i < len(bufs); {
		_, err := rawWrite(fd, bufs[i][offset:])
		switch {
		case err == nil:
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN || err == unix.EBADFD || err == unix.EBADF:
			e := mapErrno("write", err)
			if dropped != nil {
				e = errors.Join(dropped, e)
			}
			return i, e
		default:
			if dropped == nil {
				dropped = fmt.Errorf("tun: write packet %d: %w", i, err)
			}
		}
		i++
	}
	return len(bufs), dropped
}

// mapErrno turns the errnos the loop must recognise into sentinels and wraps
// the rest with the operation. EAGAIN returns the sentinel itself so that
// the hot path does not allocate.
func mapErrno(op string, err error) error {
	switch err {
	case unix.EAGAIN:
		return ErrWouldBlock
	case unix.EBADFD:
		return ErrDeleted
	case unix.EBADF:
		return ErrClosed
	}
	return fmt.Errorf("tun: %s: %w", op, err)
}
