package conn

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// batch is the kernel-facing scratch for one recvmmsg or sendmmsg call:
// headers, iovecs, socket addresses and control buffers, allocated once
// with the Bind so that Read and Write do not allocate. hdrs[i] points at
// iovs[i], names[i] and ctrl[i] for good (set up in init); only lengths and
// the iovec base (the caller's buffer, borrowed for one call) change.
type batch struct {
	hdrs  [MaxBatch]mmsghdr
	iovs  [MaxBatch]unix.Iovec
	names [MaxBatch][sizeofSockaddr6]byte
	ctrl  [MaxBatch][ctrlSize]byte
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

// prepSend readies slot i to send m; false if the destination is invalid.
func (b *batch) prepSend(i int, m *Message) bool {
	h := &b.hdrs[i].hdr
	nl := encodeSockaddr(b.names[i][:], m.Ep.Dst, uint32(m.Ep.Ifindex))
	if nl == 0 || m.Ep.Dst.Port() == 0 {
		return false
	}
	h.Namelen = uint32(nl)
	cl := encodeSource(b.ctrl[i][:], m.Ep.Dst.Addr(), m.Ep.Src, m.Ep.Ifindex)
	if cl == 0 {
		h.Control = nil
	} else {
		h.Control = &b.ctrl[i][0]
	}
	h.SetControllen(cl)
	h.Flags = 0
	b.setBuf(i, m.Buf)
	return true
}

// result fills m from slot i after a receive.
func (b *batch) result(i int, m *Message) {
	h := &b.hdrs[i].hdr
	m.N = int(b.hdrs[i].len)
	if h.Flags&unix.MSG_TRUNC != 0 {
		m.N = 0
	}
	dst, _ := decodeSockaddr(b.names[i][:min(int(h.Namelen), sizeofSockaddr6)])
	src, ifindex := parseControl(b.ctrl[i][:min(int(h.Controllen), ctrlSize)])
	m.Ep = Endpoint{Dst: dst, Src: src, Ifindex: ifindex}
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
