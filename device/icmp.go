package device

import (
	"encoding/binary"
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
		reply = icmp4Unreachable(pkt)
	case 6:
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

func icmp4Unreachable(pkt []byte) []byte {
	if len(pkt) < ipv4HeaderLen || pkt[9] == 1 && len(pkt) > 20 && pkt[20] != 8 && pkt[20] != 0 {
		return nil // never answer an ICMP error with an ICMP error
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
		return nil // only the first fragment
	}
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
	if len(pkt) < ipv6HeaderLen || pkt[6] == 58 && len(pkt) > 40 && pkt[40] < 128 {
		return nil // never answer an ICMPv6 error with an error
	}
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
