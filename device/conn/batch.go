package conn

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// batch is the kernel-facing scratch for one recvmmsg or sendmmsg call:
// headers, iovecs, socket addresses and control buffers, allocated once
// with the Bind so that Read and Write do not allocate. hdrs[i] points at
// names[i] and ctrl[i] for good (set up in init). On receive hdrs[i] also
// points at iovs[i]; on send a header may gather several iovecs (a UDP GSO
// datagram, see prepGroup), and segs[i] says how many caller messages
// header i carries. Only lengths and iovec bases (the caller's buffers,
// borrowed for one call) change.
type batch struct {
	hdrs  [MaxBatch]mmsghdr
	iovs  [MaxBatch]unix.Iovec
	names [MaxBatch][sizeofSockaddr6]byte
	ctrl  [MaxBatch][ctrlSize]byte
	segs  [MaxBatch]int
}

func (b *batch) init() {
	for i := range b.hdrs {
		h := &b.hdrs[i].hdr
		h.Name = &b.names[i][0]
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Control = &b.ctrl[i][0]
	}
}

// setBuf points iovec i at buf (nil for an empty buffer).
func (b *batch) setBuf(i int, buf []byte) {
	if len(buf) == 0 {
		b.iovs[i].Base = nil
	} else {
		b.iovs[i].Base = &buf[0]
	}
	b.iovs[i].SetLen(len(buf))
}

// prepRecv readies slot i to receive into buf.
func (b *batch) prepRecv(i int, buf []byte) {
	b.setBuf(i, buf)
	h := &b.hdrs[i].hdr
	h.Namelen = sizeofSockaddr6
	h.SetControllen(ctrlSize)
	h.Flags = 0
	b.hdrs[i].len = 0
}

// result fills m from slot i after a receive and returns the UDP_GRO
// segment size the kernel reported (0 for a plain datagram).
func (b *batch) result(i int, m *Message) int {
	h := &b.hdrs[i].hdr
	m.N = int(b.hdrs[i].len)
	if h.Flags&unix.MSG_TRUNC != 0 {
		m.N = 0
	}
	dst, _ := decodeSockaddr(b.names[i][:min(int(h.Namelen), sizeofSockaddr6)])
	src, ifindex, gro := parseControl(b.ctrl[i][:min(int(h.Controllen), ctrlSize)])
	m.Ep = Endpoint{Dst: dst, Src: src, Ifindex: ifindex}
	return gro
}

// release drops the borrowed buffers of slots [0, n) so the batch does not
// keep the caller's memory alive between calls.
func (b *batch) release(n int) {
	for i := 0; i < n; i++ {
		b.iovs[i].Base = nil
	}
}

// single is Send's scratch for one sendmsg(2).
type single struct {
	hdr  unix.Msghdr
	iov  unix.Iovec
	name [sizeofSockaddr6]byte
	ctrl [ctrlSize]byte
}

func (s *single) init() {
	s.hdr.Name = &s.name[0]
	s.hdr.Iov = &s.iov
	s.hdr.SetIovlen(1)
}

// prep readies the header for buf to ep; false if ep.Dst is invalid.
func (s *single) prep(buf []byte, ep *Endpoint) bool {
	nl := encodeSockaddr(s.name[:], ep.Dst, uint32(ep.Ifindex))
	if nl == 0 || ep.Dst.Port() == 0 {
		return false
	}
	s.hdr.Namelen = uint32(nl)
	cl := encodeSource(s.ctrl[:], ep.Dst.Addr(), ep.Src, ep.Ifindex)
	s.hdr.Control = nil
	if cl > 0 {
		s.hdr.Control = &s.ctrl[0]
	}
	s.hdr.SetControllen(cl)
	s.iov.Base = nil
	if len(buf) > 0 {
		s.iov.Base = &buf[0]
	}
	s.iov.SetLen(len(buf))
	return true
}

// family returns the socket family a destination needs.
func family(dst netip.AddrPort) int {
	if dst.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
