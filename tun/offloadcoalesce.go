package tun

import (
	"bytes"
	"encoding/binary"
)

// This file is the write half of the offloads (GRO in our code): runs of
// consecutive packets of one TCP or UDP flow become one super-packet with a
// virtio_net_hdr, so the kernel takes 64 KB in one write(2) and its stack
// handles one skb instead of forty. The rules are chosen so that the
// kernel's segmentation of our super-packet gives back exactly the packets
// we merged (Segment is the same algorithm, and the fuzz test checks the
// round trip): same addresses, ports, IPv4 TTL/TOS/DF and IPv6 class/flow/
// hop limit, IPv4 IDs counting up by one, TCP sequence numbers contiguous,
// the same ACK, window and options, only ACK (and PSH on the last) set,
// equal payload sizes except a shorter last one.

// Limits of one super-packet we build.
const (
	// maxUDPSegments is the kernel's UDP_MAX_SEGMENTS: a UDP GSO packet
	// with more segments is refused.
	maxUDPSegments = 64
	// CoalesceBufSize is the scratch size Coalescer.Next needs: a
	// virtio_net_hdr and the largest IP packet.
	CoalesceBufSize = VirtioNetHdrLen + maxIPPayload
)

// Coalescer decides which packets of a write batch go out together. The
// zero value merges TCP only; it holds no state between calls, so one value
// may serve any number of batches.
type Coalescer struct {
	// UDP allows USO super-packets; set it only when the kernel accepted
	// TUN_F_USO4/TUN_F_USO6, since a TUN refuses GSO types it was not
	// offered.
	UDP bool
}

// flowPkt is what Next needs to know about one candidate packet.
type flowPkt struct {
	pkt     []byte
	v6      bool
	proto   uint8
	ipLen   int
	hdrLen  int
	payload int
}

// Next looks at the packets pkts[i][offset:] and returns how many leading
// packets form one write. When n > 1 it has written the merged packet,
// virtio_net_hdr first, to dst[:size]; when n == 1, size is 0 and the
// caller writes pkts[0] alone behind a GSO_NONE header. dst needs
// CoalesceBufSize bytes to merge the most; a shorter dst merges less. The
// packets are only read. Next does not allocate.
func (c Coalescer) Next(pkts [][]byte, offset int, dst []byte) (n, size int) {
	if len(pkts) < 2 {
		return len(pkts), 0
	}
	first, ok := c.candidate(pkts[0], offset)
	if !ok {
		return 1, 0
	}
	total := first.payload // payload bytes merged so far
	prev := first
	n = 1
	for n < len(pkts) {
		next, ok := c.candidate(pkts[n], offset)
		if !ok || !follows(first, prev, next, n) {
			break
		}
		if !fits(first, total+next.payload, n+1, len(dst)) {
			break
		}
		total += next.payload
		n++
		prev = next
		if next.payload < first.payload || endsGroup(next) {
			break
		}
	}
	if n == 1 {
		return 1, 0
	}
	return n, build(dst, first, pkts[:n], offset, total)
}

// candidate parses one packet and reports whether it may be merged at all.
func (c Coalescer) candidate(buf []byte, offset int) (flowPkt, bool) {
	if offset < 0 || offset >= len(buf) {
		return flowPkt{}, false
	}
	p := buf[offset:]
	f := flowPkt{pkt: p}
	switch p[0] >> 4 {
	case 4:
		// No options and no fragments; the total length must be exact so
		// that no trailing bytes are lost.
		if len(p) < ipv4MinHdr || p[0] != 0x45 || int(binary.BigEndian.Uint16(p[2:])) != len(p) ||
			binary.BigEndian.Uint16(p[6:])&0x3fff != 0 {
			return f, false
		}
		f.ipLen, f.proto = ipv4MinHdr, p[9]
	case 6:
		if len(p) < ipv6Hdr || int(binary.BigEndian.Uint16(p[4:]))+ipv6Hdr != len(p) {
			return f, false
		}
		f.v6, f.ipLen, f.proto = true, ipv6Hdr, p[6]
	default:
		return f, false
	}
	switch {
	case f.proto == protoTCP:
		return f, f.tcpCandidate()
	case f.proto == protoUDP && c.UDP:
		return f, f.udpCandidate()
	}
	return f, false
}

// tcpCandidate accepts data segments that carry ACK and at most PSH.
func (f *flowPkt) tcpCandidate() bool {
	p := f.pkt
	if len(p) < f.ipLen+tcpMinHdr {
		return false
	}
	doff := int(p[f.ipLen+12]>>4) * 4
	if doff < tcpMinHdr || len(p) < f.ipLen+doff {
		return false
	}
	flags := p[f.ipLen+13]
	if flags&^tcpFlagPSH != tcpFlagACK || p[f.ipLen+12]&0x0f != 0 {
		return false
	}
	f.hdrLen = f.ipLen + doff
	f.payload = len(p) - f.hdrLen
	return f.payload > 0
}

// udpCandidate accepts datagrams with an exact length and a checksum (an
// IPv4 datagram sent without one would come back from the kernel with one).
func (f *flowPkt) udpCandidate() bool {
	p := f.pkt
	if len(p) < f.ipLen+udpHdr {
		return false
	}
	u := p[f.ipLen:]
	if int(binary.BigEndian.Uint16(u[4:])) != len(u) || binary.BigEndian.Uint16(u[6:]) == 0 {
		return false
	}
	f.hdrLen = f.ipLen + udpHdr
	f.payload = len(p) - f.hdrLen
	return f.payload > 0
}

// endsGroup reports whether nothing may follow f in a super-packet: PSH
// is kept by segmentation on the last segment only.
func endsGroup(f flowPkt) bool {
	return f.proto == protoTCP && f.pkt[f.ipLen+13]&tcpFlagPSH != 0
}

// follows reports whether next (the k-th packet of the run) continues the
// flow of first right after prev.
func follows(first, prev, next flowPkt, k int) bool {
	if next.v6 != first.v6 || next.proto != first.proto || next.hdrLen != first.hdrLen ||
		prev.payload != first.payload || next.payload > first.payload {
		return false
	}
	a, b := first.pkt, next.pkt
	if first.v6 {
		// Version, class, flow label; next header and hop limit; addresses.
		if !bytes.Equal(a[0:4], b[0:4]) || !bytes.Equal(a[6:40], b[6:40]) {
			return false
		}
	} else {
		// Version/IHL/TOS; flags; TTL and protocol; addresses. The ID of
		// the k-th packet must be the first's plus k, as segmentation
		// will number them.
		if !bytes.Equal(a[0:2], b[0:2]) || !bytes.Equal(a[6:10], b[6:10]) || !bytes.Equal(a[12:20], b[12:20]) ||
			binary.BigEndian.Uint16(b[4:]) != binary.BigEndian.Uint16(a[4:])+uint16(k) {
			return false
		}
	}
	la, lb := a[first.ipLen:first.hdrLen], b[first.ipLen:first.hdrLen]
	if first.proto == protoUDP {
		return bytes.Equal(la[0:4], lb[0:4])
	}
	seq := binary.BigEndian.Uint32(prev.pkt[prev.ipLen+4:]) + uint32(prev.payload)
	// Ports; ACK number; data offset and flags; window; urgent pointer
	// and options. Flags are equal except PSH, which only the last has.
	return bytes.Equal(la[0:4], lb[0:4]) && binary.BigEndian.Uint32(lb[4:]) == seq &&
		bytes.Equal(la[8:13], lb[8:13]) && bytes.Equal(la[14:16], lb[14:16]) &&
		bytes.Equal(la[18:], lb[18:]) && (la[13]|tcpFlagPSH) == (lb[13]|tcpFlagPSH)
}

// fits reports whether a super-packet of first's headers, payload bytes of
// payload and segs segments is within the IP, UDP and scratch limits.
func fits(first flowPkt, payload, segs, dstLen int) bool {
	if first.proto == protoUDP && segs > maxUDPSegments {
		return false
	}
	// The whole IP packet stays within 64 KiB also for IPv6, whose length
	// field would allow 40 bytes more: the kernel's own GRO never builds
	// more (gso_max_size), so neither do we.
	total := first.hdrLen + payload
	return total <= maxIPPayload && VirtioNetHdrLen+total <= dstLen
}

// build writes the virtio_net_hdr and the merged packet of pkts to dst and
// returns its size. The L4 checksum field gets the pseudo-header sum that
// NEEDS_CSUM asks for; the kernel (or the segmentation it does for a
// forwarded packet) completes it.
func build(dst []byte, first flowPkt, pkts [][]byte, offset, payload int) int {
	out := dst[VirtioNetHdrLen : VirtioNetHdrLen+first.hdrLen+payload]
	copy(out, first.pkt[:first.hdrLen])
	at := first.hdrLen
	for _, b := range pkts {
		at += copy(out[at:], b[offset+first.hdrLen:])
	}
	l4 := out[first.ipLen:]
	if first.v6 {
		binary.BigEndian.PutUint16(out[4:], uint16(len(l4)))
	} else {
		binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
		binary.BigEndian.PutUint16(out[10:], ipv4HeaderChecksum(out[:ipv4MinHdr]))
	}
	hdr := VirtioNetHdr{
		Flags:     VirtioNetHdrFNeedsCsum,
		HdrLen:    uint16(first.hdrLen),
		GSOSize:   uint16(first.payload),
		CsumStart: uint16(first.ipLen),
	}
	if first.proto == protoTCP {
		hdr.GSOType, hdr.CsumOffset = GSOTCPv4, tcpCsumOff
		if first.v6 {
			hdr.GSOType = GSOTCPv6
		}
		last := pkts[len(pkts)-1][offset:]
		l4[13] |= last[first.ipLen+13] & tcpFlagPSH
	} else {
		hdr.GSOType, hdr.CsumOffset = GSOUDPL4, udpCsumOff
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	src, dstAddr := ipAddrs(out, first.v6)
	binary.BigEndian.PutUint16(l4[hdr.CsumOffset:], csumFold(pseudoSum(src, dstAddr, first.proto, len(l4))))
	hdr.Encode(dst)
	return VirtioNetHdrLen + len(out)
}
