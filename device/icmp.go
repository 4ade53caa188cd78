package device

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"
)

// A packet with no peer for its destination is answered, as the kernel
// module does (icmp_ndo_send), with ICMP "host unreachable" or ICMPv6
// "address unreachable" written back to the TUN, at a limited rate. The
// reply's source is the unreachable destination itself: it is not one of
// the host's own addresses, so the kernel accepts it from the TUN.

const (
	icmpPerSecond = 100
	// icmpQuoteMax bounds the quoted original packet: RFC 1812 (576-byte
	// IPv4 reply), RFC 4443 §2.4 (1280-byte IPv6 reply).
	icmpQuote4Max = 576 - ipv4HeaderLen - 8
	icmpQuote6Max = 1280 - ipv6HeaderLen - 8
)

// As in the kernel's icmp_send and icmp6_send, only a packet between
// unicast addresses is answered: none to or from a multicast, broadcast or
// unspecified address (RFC 1122 3.2.2, RFC 4443 2.4), none for an ICMP error
// or an ICMPv6 redirect (also behind IPv6 extension headers), and for IPv4
// only the first fragment.

// unreachable writes an ICMP error for pkt to the TUN. Loop only.
func (l *loop) unreachable(pkt []byte, now time.Time) {
	if now.Sub(l.icmpWindow) >= time.Second {
		l.icmpWindow, l.icmpCount = now, 0
	}
	if l.icmpCount >= icmpPerSecond {
		return
	}
	var reply []byte
	switch pkt[0] >> 4 {
	case 4:
		if !icmp4Eligible(pkt) || l.isBroadcast4(pkt, now) {
			return
		}
		reply = icmp4Unreachable(pkt)
	case 6:
		if !icmp6Eligible(pkt) {
			return
		}
		reply = icmp6Unreachable(pkt)
	}
	if reply == nil {
		return
	}
	l.icmpCount++
	l.icmpBufs[0] = reply
	_, _ = l.d.tun.Write(l.icmpBufs[:], 0)
	l.icmpBufs[0] = nil
}

// icmp4Eligible reports whether an IPv4 packet may be answered with an
// ICMP error: unicast source and destination (not 0.0.0.0, multicast,
// 255.255.255.255 or class E), the first fragment, not itself an ICMP
// error (the ICMP type after the header, options included).
func icmp4Eligible(pkt []byte) bool {
	ihl := int(pkt[0]&0x0f) * 4
	if len(pkt) < ipv4HeaderLen || ihl < ipv4HeaderLen || len(pkt) < ihl {
		return false
	}
	src := netip.AddrFrom4([4]byte(pkt[12:16]))
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	if !unicast4(src) || !unicast4(dst) {
		return false
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
		return false // only the first fragment
	}
	if pkt[9] == 1 && len(pkt) > ihl && pkt[ihl] != 8 && pkt[ihl] != 0 && pkt[ihl] != 13 && pkt[ihl] != 14 {
		return false // never answer an ICMP error with an ICMP error
	}
	return true
}

func unicast4(a netip.Addr) bool {
	b := a.As4()
	return !a.IsUnspecified() && !a.IsMulticast() && b[0] < 240 // class E and 255.255.255.255
}

// icmp6Eligible is icmp4Eligible for IPv6: no multicast or unspecified
// source or destination, no ICMPv6 error or redirect.
func icmp6Eligible(pkt []byte) bool {
	if len(pkt) < ipv6HeaderLen {
		return false
	}
	src := netip.AddrFrom16([16]byte(pkt[8:24]))
	dst := netip.AddrFrom16([16]byte(pkt[24:40]))
	if src.IsUnspecified() || src.IsMulticast() || dst.IsUnspecified() || dst.IsMulticast() {
		return false
	}
	next, off := ipv6SkipExtensions(pkt)
	if next == 58 && len(pkt) > off && (pkt[off] < 128 || pkt[off] == 137) {
		return false // an ICMPv6 error or redirect
	}
	return true
}

// ipv6SkipExtensions walks an IPv6 packet's extension headers as the
// kernel's ipv6_skip_exthdr does for icmp6_send: hop-by-hop, routing and
// destination options headers, AH, and a fragment header as long as it is
// the first fragment (a later one shows no upper-layer header, and is
// reported as the fragment header itself). It returns the next-header
// value where the walk stopped and the offset of that header; a header
// cut short ends the walk there.
func ipv6SkipExtensions(pkt []byte) (next byte, off int) {
	next, off = pkt[6], ipv6HeaderLen
	for range 16 {
		var hdrLen int
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(pkt) < off+2 {
				return next, off
			}
			hdrLen = (int(pkt[off+1]) + 1) * 8
		case 51: // AH: length in 4-byte units, minus 2
			if len(pkt) < off+2 {
				return next, off
			}
			hdrLen = (int(pkt[off+1]) + 2) * 4
		case 44: // fragment
			if len(pkt) < off+8 || binary.BigEndian.Uint16(pkt[off+2:])&^7 != 0 {
				return next, off
			}
			hdrLen = 8
		default:
			return next, off
		}
		if len(pkt) < off+hdrLen {
			return next, off
		}
		next, off = pkt[off], off+hdrLen
	}
	return next, off
}

// isBroadcast4 reports whether pkt's destination is the directed broadcast
// address of one of the TUN's IPv4 prefixes (198.19.0.255 on a
// 198.19.0.1/24), which the kernel hands to the device like any other
// address. The addresses are read from the kernel at most once a second,
// only when an answer is due.
func (l *loop) isBroadcast4(pkt []byte, now time.Time) bool {
	if now.Sub(l.bcastAt) >= time.Second || l.bcastAt.IsZero() {
		l.bcastAt = now
		l.bcast = l.bcast[:0]
		if ifc, err := net.InterfaceByName(l.d.tun.Name()); err == nil {
			if addrs, err := ifc.Addrs(); err == nil {
				for _, a := range addrs {
					if b, ok := directedBroadcast(a); ok {
						l.bcast = append(l.bcast, b)
					}
				}
			}
		}
	}
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	for _, b := range l.bcast {
		if b == dst {
			return true
		}
	}
	return false
}

// directedBroadcast is the all-ones host address of an IPv4 prefix of /30
// or shorter.
func directedBroadcast(a net.Addr) (netip.Addr, bool) {
	n, ok := a.(*net.IPNet)
	if !ok {
		return netip.Addr{}, false
	}
	ip4, mask := n.IP.To4(), n.Mask
	if ip4 == nil || len(mask) != net.IPv4len {
		return netip.Addr{}, false
	}
	if ones, _ := mask.Size(); ones > 30 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i := range b {
		b[i] = ip4[i] | ^mask[i]
	}
	return netip.AddrFrom4(b), true
}

func icmp4Unreachable(pkt []byte) []byte {
	quote := pkt[:min(len(pkt), icmpQuote4Max)]
	out := make([]byte, ipv4HeaderLen+8+len(quote))
	h := out[:ipv4HeaderLen]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(len(out)))
	h[8] = 64 // TTL
	h[9] = 1  // ICMP
	copy(h[12:16], pkt[16:20])
	copy(h[16:20], pkt[12:16])
	binary.BigEndian.PutUint16(h[10:12], checksum(h, 0))
	icmp := out[ipv4HeaderLen:]
	icmp[0], icmp[1] = 3, 1 // destination unreachable, host unreachable
	copy(icmp[8:], quote)
	binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp, 0))
	return out
}

func icmp6Unreachable(pkt []byte) []byte {
	quote := pkt[:min(len(pkt), icmpQuote6Max)]
	out := make([]byte, ipv6HeaderLen+8+len(quote))
	h := out[:ipv6HeaderLen]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(8+len(quote)))
	h[6] = 58 // ICMPv6
	h[7] = 64
	copy(h[8:24], pkt[24:40])
	copy(h[24:40], pkt[8:24])
	icmp := out[ipv6HeaderLen:]
	icmp[0], icmp[1] = 1, 3 // destination unreachable, address unreachable
	copy(icmp[8:], quote)
	// Pseudo-header: source, destination, upper-layer length, next header.
	var sum uint32
	for i := 8; i < 40; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	sum += uint32(len(icmp)) + 58
	binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp, sum))
	return out
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
