package conn

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// This file is the send half of the UDP offloads: runs of datagrams to one
// endpoint leave as one UDP_SEGMENT ("GSO") datagram that the kernel, or
// the NIC, cuts back into the original datagrams.

// Limits of one GSO datagram.
const (
	// maxSegments is the most segments we put in one GSO datagram. Linux
	// accepted 64 (UDP_MAX_SEGMENTS) until 6.9 raised it to 128; 64 works
	// on every kernel with UDP_SEGMENT.
	maxSegments = 64
	// maxPayload4 and maxPayload6 bound the total payload of one GSO
	// datagram: the IPv4 total length field minus the IPv4 and UDP headers,
	// and the IPv6 payload length field minus the UDP header.
	maxPayload4 = 1<<16 - 1 - 20 - 8
	maxPayload6 = 1<<16 - 1 - 8
)

// coalescable returns how many messages from the start of msgs can ride in
// one GSO datagram: the same endpoint (destination, source and interface),
// every segment the size of the first except possibly a shorter last one,
// at most limit and maxSegments of them, and within the payload bound of
// the family. It returns 1 when nothing can join the first.
func coalescable(msgs []Message, limit int) int {
	seg := len(msgs[0].Buf)
	if seg == 0 {
		return 1
	}
	maxBytes := maxPayload6
	if msgs[0].Ep.Dst.Addr().Is4() {
		maxBytes = maxPayload4
	}
	total, n := seg, 1
	for n < len(msgs) && n < maxSegments && n < limit {
		m := &msgs[n]
		l := len(m.Buf)
		if m.Ep != msgs[0].Ep || l == 0 || l > seg || total+l > maxBytes {
			break
		}
		total += l
		n++
		if l < seg {
			break
		}
	}
	return n
}

// prepGroup readies header j to send msgs[0] and, when gso is set, the
// messages after it that coalescable admits, gathered through iovecs
// iovs[iov:] so that nothing is copied. limit bounds the messages taken (the
// iovecs left). It returns how many messages header j carries, 0 if
// msgs[0] has an invalid destination (then nothing is prepared).
func (b *batch) prepGroup(j, iov int, msgs []Message, gso bool, limit int) int {
	m := &msgs[0]
	h := &b.hdrs[j].hdr
	nl := encodeSockaddr(b.names[j][:], m.Ep.Dst, uint32(m.Ep.Ifindex))
	if nl == 0 || m.Ep.Dst.Port() == 0 {
		return 0
	}
	h.Namelen = uint32(nl)
	n := 1
	if gso {
		n = coalescable(msgs, limit)
	}
	for k := 0; k < n; k++ {
		b.setBuf(iov+k, msgs[k].Buf)
	}
	h.Iov = &b.iovs[iov]
	h.SetIovlen(n)
	cl := encodeSource(b.ctrl[j][:], m.Ep.Dst.Addr(), m.Ep.Src, m.Ep.Ifindex)
	if n > 1 {
		cl += encodeSegment(b.ctrl[j][cl:], len(m.Buf))
	}
	h.Control = nil
	if cl > 0 {
		h.Control = &b.ctrl[j][0]
	}
	h.SetControllen(cl)
	h.Flags = 0
	b.segs[j] = n
	return n
}

// consumed returns how many caller messages the first n headers carried.
func (b *batch) consumed(n int) int {
	c := 0
	for j := 0; j < n; j++ {
		c += b.segs[j]
	}
	return c
}

// gsoFault classifies a send error of a GSO datagram. EIO is what
// udp_send_skb returns when the route's device cannot checksum in hardware
// or the route is an xfrm one: GSO can never work on this socket's path, so
// it is turned off for good. EINVAL (segment larger than the path MTU) and
// EMSGSIZE might also come from something else (a stale pktinfo source), so
// they only make the caller retry once without GSO: if that succeeds, GSO
// was at fault.
func gsoFault(errno unix.Errno) (definite, suspect bool) {
	switch errno {
	case unix.EIO:
		return true, false
	case unix.EINVAL, unix.EMSGSIZE:
		return false, true
	}
	return false, false
}

// clearSource drops the sticky source of msgs, as Write does for a stale
// one; used for every message of a failed GSO datagram.
func clearSource(msgs []Message) {
	for i := range msgs {
		msgs[i].Ep.Src, msgs[i].Ep.Ifindex = netip.Addr{}, 0
	}
}
