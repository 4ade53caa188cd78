package conn

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// This file is the receive half of the UDP offloads: with UDP_GRO on, the
// kernel hands over runs of datagrams of one flow as one coalesced datagram
// plus a cmsg giving the segment size, and Read cuts it back into the
// caller's messages.

// maxDatagram is the largest UDP payload either family can carry, and so
// the largest coalesced datagram: GRO stops at 64 KiB.
const maxDatagram = 1<<16 - 1

// carry is the per-socket overflow of a coalesced datagram: the segments
// that did not fit the caller's messages, returned first by the next Read.
// It also receives datagrams whole when the caller's buffer is too small
// for a coalesced datagram. It holds at most one datagram, so its size is
// fixed at 64 KiB per socket whatever the segment count (up to 128 from a
// local GSO sender on Linux >= 6.9).
type carry struct {
	buf      [maxDatagram + 1]byte
	off, end int      // buf[off:end] is still to be returned
	seg      int      // segment size; the last segment may be shorter
	ep       Endpoint // sender and our address, the same for every segment
}

func (c *carry) empty() bool { return c.off >= c.end }

// load makes buf[:n] the pending datagram, cut into seg-byte segments (the
// whole datagram when seg is 0 or not smaller than n).
func (c *carry) load(n, seg int, ep Endpoint) {
	if seg <= 0 || seg > n {
		seg = n
	}
	c.off, c.end, c.seg, c.ep = 0, n, seg, ep
}

// emit copies pending segments into msgs, one per message, and returns how
// many messages it filled.
func (c *carry) emit(msgs []Message) int {
	out := 0
	for !c.empty() && out < len(msgs) {
		s := min(c.seg, c.end-c.off)
		putSegment(&msgs[out], c.buf[c.off:c.off+s], c.ep)
		c.off += s
		out++
	}
	return out
}

// putSegment copies one segment into m. A segment larger than m.Buf is
// reported with N == 0, as Read reports any datagram too big for its
// buffer.
func putSegment(m *Message, seg []byte, ep Endpoint) {
	m.Ep = ep
	if len(seg) > len(m.Buf) {
		m.N = 0
		return
	}
	m.N = copy(m.Buf, seg)
}

// split cuts the coalesced datagram received in msgs[0].Buf[:n] into
// seg-byte segments: the first stays where it is, the next ones are copied
// into msgs[1:], and what does not fit goes into c. It returns how many
// messages it filled.
func split(msgs []Message, n, seg int, c *carry) int {
	m := &msgs[0]
	if seg <= 0 || seg >= n {
		return 1
	}
	m.N = seg
	rest := m.Buf[seg:n]
	out := 1
	for len(rest) > 0 && out < len(msgs) {
		s := min(seg, len(rest))
		putSegment(&msgs[out], rest[:s], m.Ep)
		rest = rest[s:]
		out++
	}
	if len(rest) > 0 {
		c.load(copy(c.buf[:], rest), seg, m.Ep)
	}
	return out
}

// readGRO fills msgs from a socket with UDP_GRO on: first what the carry
// holds, then one datagram per recvmmsg until msgs is full or the socket
// is empty. One at a time is what makes it lossless: a coalesced datagram
// may hold up to 128 segments, so only the last datagram of a call may
// overflow msgs, and the carry holds exactly one. The first segment of a
// datagram is received in place when the caller's buffer can hold a whole
// coalesced datagram; otherwise the datagram goes through the carry.
func (b *Bind) readGRO(fd int, c *carry, msgs []Message) (int, error) {
	out := c.emit(msgs)
	for out < len(msgs) {
		m := &msgs[out]
		direct := len(m.Buf) > maxDatagram
		buf := c.buf[:]
		if direct {
			buf = m.Buf
		}
		b.rx.prepRecv(0, buf)
		_, errno := recvmmsg(fd, &b.rx.hdrs[0], 1, unix.MSG_DONTWAIT)
		for errno == unix.EINTR {
			_, errno = recvmmsg(fd, &b.rx.hdrs[0], 1, unix.MSG_DONTWAIT)
		}
		b.rx.release(1)
		if errno != 0 {
			return out, recvError(out, errno)
		}
		var tmp Message
		seg := b.rx.result(0, &tmp)
		switch {
		case tmp.N == 0 || direct:
			m.N, m.Ep = tmp.N, tmp.Ep
			out += split(msgs[out:], tmp.N, seg, c)
		default:
			c.load(tmp.N, seg, tmp.Ep)
			out += c.emit(msgs[out:])
		}
	}
	return out, nil
}

// recvError maps a recvmmsg failure after out messages were filled: an
// empty socket is ErrWouldBlock only if nothing was read.
func recvError(out int, errno unix.Errno) error {
	if errno == unix.EAGAIN {
		if out > 0 {
			return nil
		}
		return ErrWouldBlock
	}
	return fmt.Errorf("conn: recvmmsg: %w", errno)
}
