package conn

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// This file encodes and decodes the kernel structures a batch carries:
// socket addresses and control messages. It works on bytes with explicit
// offsets instead of casting pointers, so it needs no alignment and is safe
// on whatever the kernel (or a fuzzer) hands it.

// Sizes of the structures, fixed by the Linux ABI.
const (
	sizeofSockaddr4 = unix.SizeofSockaddrInet4 // 16
	sizeofSockaddr6 = unix.SizeofSockaddrInet6 // 28
	sizeofPktinfo4  = unix.SizeofInet4Pktinfo  // 12: ifindex, spec_dst, addr
	sizeofPktinfo6  = unix.SizeofInet6Pktinfo  // 20: addr, ifindex
)

// ctrlSize is the control buffer per message. It fits one IPV6_PKTINFO
// (40 bytes with the header on 64-bit) plus one int-sized cmsg (24): the
// UDP_GRO segment size on receive, or the UDP_SEGMENT size on send.
const ctrlSize = 64

// cmsgAlign rounds n up as CMSG_ALIGN does (to the size of a long).
func cmsgAlign(n int) int {
	const a = int(sizeofLong)
	return (n + a - 1) &^ (a - 1)
}

// sizeofLong is sizeof(long): cmsg_len is a size_t, and the header is
// that plus two ints.
const sizeofLong = unix.SizeofCmsghdr - 8

// decodeSockaddr reads a sockaddr_in or sockaddr_in6 and returns the
// address unmapped. The scope id of a v6 link-local source is not turned
// into a zone (that would allocate); Ifindex from pktinfo carries it.
func decodeSockaddr(b []byte) (netip.AddrPort, bool) {
	if len(b) < 2 {
		return netip.AddrPort{}, false
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) < 8 {
			return netip.AddrPort{}, false
		}
		port := binary.BigEndian.Uint16(b[2:])
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), true
	case unix.AF_INET6:
		if len(b) < 24 {
			return netip.AddrPort{}, false
		}
		port := binary.BigEndian.Uint16(b[2:])
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port), true
	}
	return netip.AddrPort{}, false
}

// encodeSockaddr writes dst as the sockaddr its socket family wants and
// returns its length, or 0 if b is too short or dst is not an address.
// scope is the interface for a v6 link-local destination.
func encodeSockaddr(b []byte, dst netip.AddrPort, scope uint32) int {
	a := dst.Addr()
	if a.Is4() {
		if len(b) < sizeofSockaddr4 {
			return 0
		}
		clear(b[:sizeofSockaddr4])
		binary.NativeEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], dst.Port())
		a4 := a.As4()
		copy(b[4:8], a4[:])
		return sizeofSockaddr4
	}
	if !a.Is6() || len(b) < sizeofSockaddr6 {
		return 0
	}
	clear(b[:sizeofSockaddr6])
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	a16 := a.As16()
	copy(b[8:24], a16[:])
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		binary.NativeEndian.PutUint32(b[24:], scope)
	}
	return sizeofSockaddr6
}

// parseControl walks the control messages the kernel returned and picks out
// the packet info (our local address and the incoming interface) and the
// UDP_GRO segment size of a coalesced datagram (0 when absent or not
// positive). Malformed or truncated messages end the walk; what was found
// so far is kept.
func parseControl(b []byte) (src netip.Addr, ifindex int32, gro int) {
	const hdr = unix.SizeofCmsghdr
	for len(b) >= hdr {
		var l int
		if hdr == 16 {
			l = int(min(binary.NativeEndian.Uint64(b), uint64(len(b))+1))
		} else {
			l = int(min(binary.NativeEndian.Uint32(b), uint32(len(b))+1))
		}
		if l < hdr || l > len(b) {
			return src, ifindex, gro
		}
		level := int32(binary.NativeEndian.Uint32(b[hdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(b[hdr-4:]))
		data := b[hdr:l]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= sizeofPktinfo4:
			// in_pktinfo: ipi_ifindex, ipi_spec_dst (the local address a
			// reply should come from), ipi_addr (the header destination).
			ifindex = int32(binary.NativeEndian.Uint32(data))
			src = netip.AddrFrom4([4]byte(data[4:8]))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= sizeofPktinfo6:
			src = netip.AddrFrom16([16]byte(data[:16])).Unmap()
			ifindex = int32(binary.NativeEndian.Uint32(data[16:]))
		case level == unix.SOL_UDP && typ == unix.UDP_GRO && len(data) >= 4:
			// The kernel puts the gso_size of the coalesced skb as an int.
			gro = max(int(int32(binary.NativeEndian.Uint32(data))), 0)
		}
		next := cmsgAlign(l)
		if next >= len(b) {
			return src, ifindex, gro
		}
		b = b[next:]
	}
	return src, ifindex, gro
}

// sizeofSegment is the UDP_SEGMENT cmsg payload: the kernel insists on
// exactly a __u16 (cmsg_len == CMSG_LEN(2)), anything else is EINVAL.
const sizeofSegment = 2

// encodeSegment writes a UDP_SEGMENT cmsg asking the kernel to cut the
// datagram into size-byte segments and returns its space, 0 if b is too
// short or size does not fit the field.
func encodeSegment(b []byte, size int) int {
	n := unix.CmsgSpace(sizeofSegment)
	if len(b) < n || size <= 0 || size > 0xffff {
		return 0
	}
	clear(b[:n])
	putCmsgHeader(b, unix.SOL_UDP, unix.UDP_SEGMENT, sizeofSegment)
	binary.NativeEndian.PutUint16(b[unix.SizeofCmsghdr:], uint16(size))
	return n
}

// putCmsgHeader writes a cmsg header for dataLen bytes of data.
func putCmsgHeader(b []byte, level, typ int32, dataLen int) {
	l := unix.SizeofCmsghdr + dataLen
	if unix.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(b, uint64(l))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(l))
	}
	binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-8:], uint32(level))
	binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-4:], uint32(typ))
}

// encodeSource writes the packet info that makes the kernel send from src
// and returns the control length, 0 when src is not set (the kernel then
// chooses) or does not match the destination's family. For IPv4 only the
// source is given (ipi_spec_dst) and the route picks the interface, as the
// kernel module does; for IPv6 the interface is given too, which the
// kernel needs for link-local sources.
func encodeSource(b []byte, dst netip.Addr, src netip.Addr, ifindex int32) int {
	if !src.IsValid() {
		return 0
	}
	if dst.Is4() && src.Is4() {
		n := unix.CmsgSpace(sizeofPktinfo4)
		if len(b) < n {
			return 0
		}
		clear(b[:n])
		putCmsgHeader(b, unix.IPPROTO_IP, unix.IP_PKTINFO, sizeofPktinfo4)
		s := src.As4()
		copy(b[unix.SizeofCmsghdr+4:], s[:])
		return n
	}
	if dst.Is6() && src.Is6() && !src.Is4In6() {
		n := unix.CmsgSpace(sizeofPktinfo6)
		if len(b) < n {
			return 0
		}
		clear(b[:n])
		putCmsgHeader(b, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, sizeofPktinfo6)
		s := src.As16()
		copy(b[unix.SizeofCmsghdr:], s[:])
		binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr+16:], uint32(ifindex))
		return n
	}
	return 0
}
