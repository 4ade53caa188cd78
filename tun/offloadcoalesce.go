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
	// CoalesceBufSize is the largest super-packet written: a
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

// flowPkt is what grouping needs to know about one candidate packet.
type flowPkt struct {
	pkt     []byte
	v6      bool
	proto   uint8
	ipLen   int
	hdrLen  int
	payload int
}

// candidate parses one packet and reports whether it may be merged at all.
// Only packets whose checksums (IPv4 header, TCP or UDP) are right merge:
// a super-packet goes to the kernel marked NEEDS_CSUM, so the kernel
// computes new checksums for the segments and checks none, and a packet
// that arrived with a bad one would reach the application. Left alone, it
// is written as it came and the kernel drops it.
func (c Coalescer) candidate(buf []byte, offset int) (flowPkt, bool) {
	f, ok := c.parseCandidate(buf, offset)
	return f, ok && f.checksumsValid()
}

// checksumsValid verifies the IPv4 header checksum and the L4 checksum
// over the pseudo-header: a correct one makes the folded sum all ones.
func (f *flowPkt) checksumsValid() bool {
	p := f.pkt
	if !f.v6 && csumFold(ipv4HeaderSum(p[:f.ipLen])) != 0xffff {
		return false
	}
	src, dst := ipAddrs(p, f.v6)
	l4 := p[f.ipLen:]
	return csumFold(csumAdd(pseudoSum(src, dst, f.proto, len(l4)), l4)) == 0xffff
}

// parseCandidate is candidate without the checksum checks.
func (c Coalescer) parseCandidate(buf []byte, offset int) (flowPkt, bool) {
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
func endsGroup(f *flowPkt) bool {
	return f.proto == protoTCP && f.pkt[f.ipLen+13]&tcpFlagPSH != 0
}

// follows reports whether next (the k-th packet of the run) continues the
// flow of first right after prev.
func follows(first, prev, next *flowPkt, k int) bool {
	if next.v6 != first.v6 || next.proto != first.proto || next.hdrLen != first.hdrLen ||
		prev.payload != first.payload || next.payload > first.payload {
		return false
	}
	a, b := first.pkt, next.pkt
	if first.v6 {
		// Version, class, flow label; next header and hop limit; addresses.
		if !eq32(a[0:4], b[0:4]) || !eq16(a[6:8], b[6:8]) || !eq64(a[8:16], b[8:16]) ||
			!eq64(a[16:24], b[16:24]) || !eq64(a[24:32], b[24:32]) || !eq64(a[32:40], b[32:40]) {
			return false
		}
	} else {
		// Version/IHL/TOS; flags; TTL and protocol; addresses. The ID of
		// the k-th packet must be the first's plus k, as segmentation
		// will number them.
		if !eq16(a[0:2], b[0:2]) || !eq32(a[6:10], b[6:10]) || !eq64(a[12:20], b[12:20]) ||
			binary.BigEndian.Uint16(b[4:]) != binary.BigEndian.Uint16(a[4:])+uint16(k) {
			return false
		}
	}
	la, lb := a[first.ipLen:first.hdrLen], b[first.ipLen:first.hdrLen]
	if first.proto == protoUDP {
		return eq32(la[0:4], lb[0:4])
	}
	seq := binary.BigEndian.Uint32(prev.pkt[prev.ipLen+4:]) + uint32(prev.payload)
	// Ports; ACK number; data offset and flags; window; urgent pointer
	// and options. Flags are equal except PSH, which only the last has.
	return eq32(la[0:4], lb[0:4]) && binary.BigEndian.Uint32(lb[4:]) == seq &&
		eq32(la[8:12], lb[8:12]) && la[12] == lb[12] && eq16(la[14:16], lb[14:16]) &&
		bytes.Equal(la[18:], lb[18:]) && (la[13]|tcpFlagPSH) == (lb[13]|tcpFlagPSH)
}

// eq16, eq32 and eq64 compare two fixed-size header fields with one load
// each instead of a call to bytes.Equal.
func eq16(a, b []byte) bool { return binary.LittleEndian.Uint16(a) == binary.LittleEndian.Uint16(b) }
func eq32(a, b []byte) bool { return binary.LittleEndian.Uint32(a) == binary.LittleEndian.Uint32(b) }
func eq64(a, b []byte) bool { return binary.LittleEndian.Uint64(a) == binary.LittleEndian.Uint64(b) }

// fits reports whether a super-packet of first's headers, payload bytes of
// payload and segs segments is within the IP, UDP and scratch limits.
func fits(first *flowPkt, payload, segs, dstLen int) bool {
	if first.proto == protoUDP && segs > maxUDPSegments {
		return false
	}
	// The whole IP packet stays within 64 KiB also for IPv6, whose length
	// field would allow 40 bytes more: the kernel's own GRO never builds
	// more (gso_max_size), so neither do we.
	total := first.hdrLen + payload
	return total <= maxIPPayload && VirtioNetHdrLen+total <= dstLen
}

// buildHeader writes the virtio_net_hdr and the merged packet's IP and L4
// headers (first's, with the lengths, the IPv4 header checksum, the last
// segment's PSH and the pseudo-header checksum of a merge of payload bytes)
// to dst, and returns their length, VirtioNetHdrLen + first.hdrLen. The
// payload itself is not read: its checksum is left to the kernel
// (VIRTIO_NET_HDR_F_NEEDS_CSUM): the L4 checksum field gets the
// pseudo-header sum that NEEDS_CSUM asks for, which the kernel (or the
// segmentation it does for a forwarded packet) completes.
func buildHeader(dst []byte, first flowPkt, last []byte, payload int) int {
	out := dst[VirtioNetHdrLen : VirtioNetHdrLen+first.hdrLen]
	copy(out, first.pkt[:first.hdrLen])
	total := first.hdrLen + payload
	l4 := out[first.ipLen:]
	l4len := total - first.ipLen
	if first.v6 {
		binary.BigEndian.PutUint16(out[4:], uint16(l4len))
	} else {
		binary.BigEndian.PutUint16(out[2:], uint16(total))
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
		l4[13] |= last[first.ipLen+13] & tcpFlagPSH
	} else {
		hdr.GSOType, hdr.CsumOffset = GSOUDPL4, udpCsumOff
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	}
	src, dstAddr := ipAddrs(out, first.v6)
	binary.BigEndian.PutUint16(l4[hdr.CsumOffset:], csumFold(pseudoSum(src, dstAddr, first.proto, l4len)))
	hdr.Encode(dst)
	return VirtioNetHdrLen + first.hdrLen
}

// WriteWindow is how many packets of one Write the offload path considers
// together when merging: packets further apart are never merged.
const WriteWindow = groupWindow

// Limits of one grouping window.
const (
	// groupWindow is the most packets Grouper.Group looks at in one call;
	// its per-packet arrays have this size, so it does not allocate.
	groupWindow = 256
	// maxOpenFlows is how many flows may grow a super-packet at once. A
	// further flow closes the oldest open group, which is then written as
	// far as it got, so a full table costs merging, never correctness.
	maxOpenFlows = 16
)

// group is one write of a window: a super-packet or a single packet.
type group struct {
	first, prev flowPkt // the first and latest member, parsed
	head, tail  int16   // window indices of the first and latest member
	count       int     // members
	total       int     // payload bytes of all members
}

// Grouper sorts the packets of a write batch into groups of one flow each,
// also when other flows' packets sit between them (several TCP streams
// through one tunnel arrive interleaved: A B C D A B C D). A group
// follows the rules at the top of this file, so segmentation gives back
// each member exactly; a PSH segment only ever ends one.
// Groups come out in the order of their first packet; within a flow the
// order of the packets is kept, because a packet of a flow that cannot
// join its flow's open group closes that group, and so does any packet that
// may belong to the flow but cannot be merged (a pure ACK, a FIN, an
// unparsable packet closes every group). Packets of different flows may
// thus be reordered relative to each other. A Grouper is big (a fixed
// table for groupWindow packets); the event loop owns one per device.
type Grouper struct {
	groups  [groupWindow]group
	ngroups int
	link    [groupWindow]int16 // next member of the same group, -1 at the end
	open    [maxOpenFlows]int16
	nopen   int // open[:nopen] are the groups that may still grow, oldest first
}

// Group sorts pkts[:min(len(pkts), groupWindow)] into groups and returns
// how many packets it looked at. With interleave false only consecutive
// packets merge, so the groups cover the window in order. dstLen bounds a
// merged packet's size, virtio_net_hdr included.
func (g *Grouper) Group(c Coalescer, pkts [][]byte, offset, dstLen int, interleave bool) int {
	w := min(len(pkts), groupWindow)
	g.ngroups, g.nopen = 0, 0
	for k := range w {
		g.link[k] = -1
		f, ok := c.candidate(pkts[k], offset)
		if !ok {
			g.closeFlow(pkts[k], offset, interleave)
			g.start(k, f, false)
			continue
		}
		if g.join(k, f, dstLen, interleave) {
			continue
		}
		g.start(k, f, !endsGroup(&f))
	}
	return w
}

// join adds candidate f, packet k, to the open group of its flow if it
// continues it, and closes that group if it does not.
func (g *Grouper) join(k int, f flowPkt, dstLen int, interleave bool) bool {
	slot := -1
	for i := range g.nopen {
		if sameFlow(&g.groups[g.open[i]].first, &f) {
			slot = i
			break
		}
	}
	if slot < 0 {
		if !interleave {
			g.nopen = 0 // another flow ends the run
		}
		return false
	}
	gr := &g.groups[g.open[slot]]
	if !follows(&gr.first, &gr.prev, &f, gr.count) || !fits(&gr.first, gr.total+f.payload, gr.count+1, dstLen) {
		g.closeSlot(slot)
		return false
	}
	g.link[gr.tail] = int16(k)
	gr.tail, gr.prev = int16(k), f
	gr.count++
	gr.total += f.payload
	if f.payload < gr.first.payload || endsGroup(&f) {
		g.closeSlot(slot)
	}
	return true
}

// start begins a new group with packet k and, if it may grow, opens it,
// closing the oldest open group when the table is full.
func (g *Grouper) start(k int, f flowPkt, open bool) {
	g.groups[g.ngroups] = group{first: f, prev: f, head: int16(k), tail: int16(k), count: 1, total: f.payload}
	if open {
		if g.nopen == maxOpenFlows {
			g.closeSlot(0)
		}
		g.open[g.nopen] = int16(g.ngroups)
		g.nopen++
	}
	g.ngroups++
}

// closeSlot stops the group in open[slot] from growing.
func (g *Grouper) closeSlot(slot int) {
	copy(g.open[slot:g.nopen], g.open[slot+1:g.nopen])
	g.nopen--
}

// closeFlow closes every open group that packet buf[offset:], which cannot
// be merged, may belong to: those of its addresses and ports, of its
// addresses when it has no ports we can read, all when it is not IP.
func (g *Grouper) closeFlow(buf []byte, offset int, interleave bool) {
	v6, addrs, ports, ok := looseKey(buf, offset)
	if !ok || !interleave {
		g.nopen = 0
		return
	}
	for i := g.nopen - 1; i >= 0; i-- {
		f := g.groups[g.open[i]].first
		if f.v6 != v6 || !bytes.Equal(flowAddrs(f), addrs) {
			continue
		}
		if ports == nil || bytes.Equal(f.pkt[f.ipLen:f.ipLen+4], ports) {
			g.closeSlot(i)
		}
	}
}

// Len returns how many groups the last Group call made.
func (g *Grouper) Len() int { return g.ngroups }

// Size returns the number of packets in group i.
func (g *Grouper) Size(i int) int { return g.groups[i].count }

// Head returns the window index of the first packet of group i.
func (g *Grouper) Head(i int) int { return int(g.groups[i].head) }

// NextMember returns the window index of the packet after k in its group,
// or -1 after the last.
func (g *Grouper) NextMember(k int) int { return int(g.link[k]) }

// Gather describes group i of pkts (the slice given to Group), a group of
// more than one packet, for one writev(2) without copying: it writes the
// virtio_net_hdr and merged headers to hdr (at least MaxGatherHeader
// bytes) and returns iov holding hdr's used part followed by each member's
// payload, in order, as slices of pkts.
func (g *Grouper) Gather(hdr []byte, iov [][]byte, pkts [][]byte, offset, i int) [][]byte {
	gr := &g.groups[i]
	first := gr.first
	iov = append(iov[:0], nil)
	var last []byte
	for k := int(gr.head); k >= 0; k = int(g.link[k]) {
		iov = append(iov, pkts[k][offset+first.hdrLen:])
		last = pkts[k][offset:]
	}
	iov[0] = hdr[:buildHeader(hdr, first, last, gr.total)]
	return iov
}

// MaxGatherHeader bounds the header bytes Gather writes: the virtio
// header, an IP header of up to 60 bytes (IPv4 with options; IPv6's is 40)
// and a TCP header with all its options.
const MaxGatherHeader = VirtioNetHdrLen + 60 + 60

// sameFlow reports whether two candidates have the same protocol,
// addresses and ports.
func sameFlow(a, b *flowPkt) bool {
	if a.v6 != b.v6 || a.proto != b.proto || !eq32(a.pkt[a.ipLen:a.ipLen+4], b.pkt[b.ipLen:b.ipLen+4]) {
		return false
	}
	if !a.v6 {
		return eq64(a.pkt[12:20], b.pkt[12:20])
	}
	return eq64(a.pkt[8:16], b.pkt[8:16]) && eq64(a.pkt[16:24], b.pkt[16:24]) &&
		eq64(a.pkt[24:32], b.pkt[24:32]) && eq64(a.pkt[32:40], b.pkt[32:40])
}

// flowAddrs returns the source and destination addresses of a candidate.
func flowAddrs(f flowPkt) []byte {
	if f.v6 {
		return f.pkt[8:40]
	}
	return f.pkt[12:20]
}

// looseKey reads the addresses and, for an unfragmented TCP or UDP packet
// without IPv6 extension headers, the ports of any IP packet; ok is false
// when buf[offset:] is not an IP packet whose addresses can be read.
func looseKey(buf []byte, offset int) (v6 bool, addrs, ports []byte, ok bool) {
	if offset < 0 || offset >= len(buf) {
		return false, nil, nil, false
	}
	p := buf[offset:]
	var ipLen int
	var proto uint8
	switch p[0] >> 4 {
	case 4:
		ipLen = int(p[0]&0x0f) * 4
		if len(p) < ipv4MinHdr || ipLen < ipv4MinHdr {
			return false, nil, nil, false
		}
		addrs, proto = p[12:20], p[9]
		if binary.BigEndian.Uint16(p[6:])&0x1fff != 0 {
			proto = 0 // a later fragment: no ports
		}
	case 6:
		if len(p) < ipv6Hdr {
			return false, nil, nil, false
		}
		v6, ipLen, addrs, proto = true, ipv6Hdr, p[8:40], p[6]
	default:
		return false, nil, nil, false
	}
	if (proto == protoTCP || proto == protoUDP) && len(p) >= ipLen+4 {
		ports = p[ipLen : ipLen+4]
	}
	return v6, addrs, ports, true
}

// Tail returns the window index of the last packet of group i.
func (g *Grouper) Tail(i int) int { return int(g.groups[i].tail) }
