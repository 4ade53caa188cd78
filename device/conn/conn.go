// Package conn is the UDP side of wgd: one non-blocking socket per address
// family on the same port, batch receive with recvmmsg(2) and batch send
// with sendmmsg(2), and sticky source addresses (IP_PKTINFO,
// IPV6_RECVPKTINFO) so that replies leave from the address a peer reached,
// as the kernel module does.
package conn

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// MaxBatch is the most datagrams one Read or Write call passes to the
// kernel; longer slices are handled in several calls (Write) or cut (Read).
const MaxBatch = 128

// Endpoint is where a peer is and which of our addresses it last reached.
// The zero value means "unknown". It is a comparable value and holds no
// pointers, so copying it is free.
type Endpoint struct {
	Dst     netip.AddrPort // the peer; IPv4 always unmapped (Is4); zoned only as configured (Ifindex is the scope)
	Src     netip.Addr     // our local address to send from; invalid = kernel chooses
	Ifindex int32          // interface the last packet came in on; v6 pktinfo and link-local scope
}

// ClearSource forgets the local address, so that the kernel chooses one.
// The interface stays for a link-local peer: it is the destination's
// scope, without which the kernel cannot tell which link the address is on.
func (e *Endpoint) ClearSource() {
	e.Src = netip.Addr{}
	if !e.Dst.Addr().IsLinkLocalUnicast() {
		e.Ifindex = 0
	}
}

// Message is one datagram of a batch. The buffer belongs to the caller; the
// Bind only borrows it for the duration of one Read or Write call.
type Message struct {
	Buf []byte   // recv: buffer to fill (len(Buf) is the capacity used); send: the datagram
	N   int      // recv: bytes received; 0 for a datagram larger than Buf (dropped); send: set to -1 by Write for a datagram it dropped
	Ep  Endpoint // recv: sender in Dst, our address in Src/Ifindex; send: where to
	// Seg is set by ReadCoalesced only: the segment size when the kernel
	// coalesced several datagrams of one flow into Buf[:N] (each Seg bytes,
	// the last possibly shorter); 0 for a single datagram.
	Seg int
}

// ErrWouldBlock means "nothing to read" or "socket buffer full": the caller
// waits for epoll. It wraps EAGAIN so errors.Is matches either, and it is
// returned as is, so the hot path does not allocate.
var ErrWouldBlock = fmt.Errorf("conn: would block: %w", unix.EAGAIN)

// ErrClosed is returned by calls on a closed Bind.
var ErrClosed = errors.New("conn: bind closed")

// ErrBadEndpoint is returned (per dropped datagram) for a destination that
// is not a valid address and port.
var ErrBadEndpoint = errors.New("conn: invalid destination endpoint")

// ErrNoSocket is returned for a datagram to an address family the Bind has
// no socket for (IPv6 disabled on the host).
var ErrNoSocket = errors.New("conn: no socket for address family")

// ErrBadFd is returned by Read for an fd that is not one of Fds().
var ErrBadFd = errors.New("conn: fd does not belong to this bind")
