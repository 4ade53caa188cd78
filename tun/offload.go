package tun

import (
	"encoding/binary"
	"errors"
)

// This file is the pure half of the TUN offloads: the virtio_net_hdr that
// precedes every packet on a TUN opened with IFF_VNET_HDR, and Segment,
// which splits a TSO/USO super-packet read from the kernel into packets of
// at most the MTU with complete headers and checksums. No syscalls here.
// Field meanings follow include/uapi/linux/virtio_net.h.

// VirtioNetHdrLen is the size of struct virtio_net_hdr, the header the
// kernel puts in front of every packet once IFF_VNET_HDR is set (we never
// change it with TUNSETVNETHDRSZ, so it stays at the default 10).
const VirtioNetHdrLen = 10

// VirtioNetHdr flag bits.
const (
	// VirtioNetHdrFNeedsCsum: the L4 checksum is partial (the field holds
	// the pseudo-header sum); the bytes from CsumStart on still need
	// summing, with the result stored at CsumStart+CsumOffset.
	VirtioNetHdrFNeedsCsum uint8 = 1
	// VirtioNetHdrFDataValid: the checksum was already verified.
	VirtioNetHdrFDataValid uint8 = 2
)

// VirtioNetHdr GSO types.
const (
	GSONone  uint8 = 0    // a single packet
	GSOTCPv4 uint8 = 1    // TCP over IPv4, segments of GSOSize payload bytes
	GSOUDP   uint8 = 3    // UFO (IP fragmentation); never offered, rejected
	GSOTCPv6 uint8 = 4    // TCP over IPv6
	GSOUDPL4 uint8 = 5    // USO: UDP datagrams of GSOSize bytes, v4 or v6
	GSOECN   uint8 = 0x80 // ORed into the type: the flow uses ECN (CWR)
)

// Errors from Segment and the header codec. They are returned as they are,
// never wrapped, so that the read path does not allocate.
var (
	// ErrVnetHdr means a virtio_net_hdr that is short or names a GSO type
	// we did not ask the kernel for.
	ErrVnetHdr = errors.New("tun: bad virtio_net_hdr")
	// ErrSuperPacket means a packet whose IP/L4 headers do not agree with
	// its length or its virtio_net_hdr.
	ErrSuperPacket = errors.New("tun: malformed offload packet")
	// ErrTooManySegments means the output buffers cannot hold all segments.
	ErrTooManySegments = errors.New("tun: not enough buffers for segments")
)

// VirtioNetHdr is struct virtio_net_hdr. On the wire its 16-bit fields are
// little-endian: the kernel uses the host order for TUN (legacy virtio) and
// we ask for little-endian explicitly with TUNSETVNETLE, so this encoding is
// right on every host.
type VirtioNetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16 // bytes of IP+L4 headers (a hint; the kernel's may be larger)
	GSOSize    uint16 // L4 payload bytes per segment
	CsumStart  uint16 // offset of the L4 header from the IP header
	CsumOffset uint16 // offset of the checksum field inside the L4 header
}

// DecodeVirtioNetHdr reads the header from the first VirtioNetHdrLen bytes
// of b.
func DecodeVirtioNetHdr(b []byte) (VirtioNetHdr, error) {
	if len(b) < VirtioNetHdrLen {
		return VirtioNetHdr{}, ErrVnetHdr
	}
	return VirtioNetHdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}, nil
}

// Encode writes the header into the first VirtioNetHdrLen bytes of b, which
// must be that long.
func (h VirtioNetHdr) Encode(b []byte) {
	_ = b[VirtioNetHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}

// IP and L4 layout constants used by the offload code.
const (
	ipv4MinHdr   = 20
	ipv6Hdr      = 40
	tcpMinHdr    = 20
	udpHdr       = 8
	protoTCP     = 6
	protoUDP     = 17
	tcpCsumOff   = 16
	udpCsumOff   = 6
	tcpFlagFIN   = 0x01
	tcpFlagSYN   = 0x02
	tcpFlagRST   = 0x04
	tcpFlagPSH   = 0x08
	tcpFlagACK   = 0x10
	tcpFlagURG   = 0x20
	tcpFlagECE   = 0x40
	tcpFlagCWR   = 0x80
	maxIPPayload = 65535
)

// superPacket is what Segment learned from the headers of a GSO packet.
type superPacket struct {
	v6     bool
	proto  uint8
	ipLen  int // IP header length, IPv6 hop-by-hop and destination options included
	hdrLen int // IP + L4 header length
	gso    int // payload bytes per segment
	nseg   int
}

// parseSuper checks the headers of a GSO packet against hdr and returns its
// layout. It trusts nothing: the lengths come from the packet itself and
// csum_start/hdr_len are only hints the kernel may set loosely.
func parseSuper(pkt []byte, hdr VirtioNetHdr) (superPacket, error) {
	var sp superPacket
	if len(pkt) < 1 {
		return sp, ErrSuperPacket
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4MinHdr {
			return sp, ErrSuperPacket
		}
		sp.ipLen = int(pkt[0]&0x0f) * 4
		sp.proto = pkt[9]
		// The total length must cover exactly what was read: a mismatch is
		// a truncated read or a header we do not understand.
		if int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
			return sp, ErrSuperPacket
		}
		// A fragment cannot be segmented: its L4 header is elsewhere.
		if sp.ipLen < ipv4MinHdr || binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
			return sp, ErrSuperPacket
		}
	case 6:
		if len(pkt) < ipv6Hdr {
			return sp, ErrSuperPacket
		}
		if int(binary.BigEndian.Uint16(pkt[4:]))+ipv6Hdr != len(pkt) {
			return sp, ErrSuperPacket
		}
		sp.v6 = true
		var ok bool
		if sp.proto, sp.ipLen, ok = ipv6Upper(pkt); !ok {
			return sp, ErrSuperPacket
		}
	default:
		return sp, ErrSuperPacket
	}
	switch hdr.GSOType &^ GSOECN {
	case GSOTCPv4:
		if sp.v6 || sp.proto != protoTCP {
			return sp, ErrSuperPacket
		}
	case GSOTCPv6:
		if !sp.v6 || sp.proto != protoTCP {
			return sp, ErrSuperPacket
		}
	case GSOUDPL4:
		if sp.proto != protoUDP {
			return sp, ErrSuperPacket
		}
	default:
		return sp, ErrVnetHdr
	}
	return sp.finish(pkt, int(hdr.GSOSize))
}

// ipv6Upper finds the upper-layer header of an IPv6 packet behind its
// hop-by-hop and destination options headers, which every segment repeats
// as they are (a socket with IPV6_HOPOPTS or IPV6_DSTOPTS gets TSO
// super-packets with them). It returns the protocol and the offset where
// its header starts; ok is false for a header cut short. A routing header
// would change the checksum's pseudo-header and a fragment header cannot
// be in a super-packet: their protocol numbers are returned as they are,
// which the caller refuses.
func ipv6Upper(pkt []byte) (proto byte, off int, ok bool) {
	proto, off = pkt[6], ipv6Hdr
	for proto == ipv6HopByHop || proto == ipv6DestOpts {
		if len(pkt) < off+8 {
			return 0, 0, false
		}
		proto, off = pkt[off], off+(int(pkt[off+1])+1)*8
	}
	return proto, off, len(pkt) >= off
}

// IPv6 extension headers that segmentation carries along.
const (
	ipv6HopByHop = 0
	ipv6DestOpts = 60
)

// finish adds the L4 header length and the segment count.
func (sp superPacket) finish(pkt []byte, gso int) (superPacket, error) {
	l4 := udpHdr
	if sp.proto == protoTCP {
		if len(pkt) < sp.ipLen+tcpMinHdr {
			return sp, ErrSuperPacket
		}
		l4 = int(pkt[sp.ipLen+12]>>4) * 4
		if l4 < tcpMinHdr {
			return sp, ErrSuperPacket
		}
	}
	sp.hdrLen = sp.ipLen + l4
	if len(pkt) < sp.hdrLen || gso == 0 {
		return sp, ErrSuperPacket
	}
	// The largest IP packet bounds every segment, and the IPv6 payload
	// length field bounds the whole super-packet we accept.
	if sp.hdrLen+gso > maxIPPayload || len(pkt)-sp.ipLen > maxIPPayload {
		return sp, ErrSuperPacket
	}
	sp.gso = gso
	payload := len(pkt) - sp.hdrLen
	sp.nseg = (payload + gso - 1) / gso
	if sp.nseg == 0 {
		sp.nseg = 1
	}
	return sp, nil
}

// Segment splits one packet read from a TUN with IFF_VNET_HDR into the IP
// packets it stands for. pkt is the packet after the virtio_net_hdr, hdr the
// decoded header. Segment i is written at outs[i][offset:] and its length
// stored in sizes[i]; the count is returned. outs must not overlap pkt.
//
// For GSO_NONE the packet is copied as it is, its checksum completed when
// the kernel left it partial (NEEDS_CSUM). For TCP and UDP (USO) super-
// packets every segment gets its own IPv4 total length, ID (the first
// segment's ID plus its index, as the kernel numbers them), header checksum
// or IPv6 payload length, TCP sequence number and flags (FIN and PSH only on
// the last, CWR only on the first) or UDP length, and a full L4 checksum.
// It does not allocate.
func Segment(pkt []byte, hdr VirtioNetHdr, outs [][]byte, sizes []int, offset int) (int, error) {
	if hdr.GSOType == GSONone {
		return segmentNone(pkt, hdr, outs, sizes, offset)
	}
	sp, err := parseSuper(pkt, hdr)
	if err != nil {
		return 0, err
	}
	if sp.nseg > len(outs) || sp.nseg > len(sizes) {
		return 0, ErrTooManySegments
	}
	return segmentRange(pkt, sp, 0, outs, sizes, offset)
}

// segmentRange writes segments first, first+1, ... of the super-packet
// into outs until either runs out, and returns how many it wrote. Read uses
// it to hand out a super-packet over several calls; Segment wants them all.
func segmentRange(pkt []byte, sp superPacket, first int, outs [][]byte, sizes []int, offset int) (int, error) {
	n := min(sp.nseg-first, len(outs), len(sizes))
	for i := range n {
		seg := first + i
		start := sp.hdrLen + seg*sp.gso
		end := min(start+sp.gso, len(pkt))
		if offset < 0 {
			return i, ErrTooManySegments
		}
		outs[i] = grow(outs[i], offset, sp.hdrLen+end-start)
		out := outs[i][offset : offset+sp.hdrLen+end-start]
		copy(out, pkt[:sp.hdrLen])
		copy(out[sp.hdrLen:], pkt[start:end])
		fixSegment(out, sp, seg, end == len(pkt))
		sizes[i] = len(out)
	}
	return n, nil
}

// fixSegment rewrites the headers of segment seg (already copied to out)
// and computes its checksums.
func fixSegment(out []byte, sp superPacket, seg int, last bool) {
	l4 := out[sp.ipLen:]
	if sp.v6 {
		// The payload length covers the extension headers too.
		binary.BigEndian.PutUint16(out[4:], uint16(len(out)-ipv6Hdr))
	} else {
		binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
		id := binary.BigEndian.Uint16(out[4:])
		binary.BigEndian.PutUint16(out[4:], id+uint16(seg))
		binary.BigEndian.PutUint16(out[10:], ipv4HeaderChecksum(out[:sp.ipLen]))
	}
	csumOff := udpCsumOff
	if sp.proto == protoTCP {
		csumOff = tcpCsumOff
		seq := binary.BigEndian.Uint32(l4[4:])
		binary.BigEndian.PutUint32(l4[4:], seq+uint32(seg*sp.gso))
		if !last {
			l4[13] &^= tcpFlagFIN | tcpFlagPSH
		}
		if seg > 0 {
			l4[13] &^= tcpFlagCWR
		}
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	l4[csumOff], l4[csumOff+1] = 0, 0
	src, dst := ipAddrs(out, sp.v6)
	sum := ^csumFold(csumAdd(pseudoSum(src, dst, sp.proto, len(l4)), l4))
	if sum == 0 && sp.proto == protoUDP {
		sum = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(l4[csumOff:], sum)
}

// ipAddrs returns the source and destination address bytes of an IP packet
// whose header is known to be complete.
func ipAddrs(pkt []byte, v6 bool) (src, dst []byte) {
	if v6 {
		return pkt[8:24], pkt[24:40]
	}
	return pkt[12:16], pkt[16:20]
}

// segmentNone copies a single packet and completes a partial checksum the
// way the kernel's skb_checksum_help does.
func segmentNone(pkt []byte, hdr VirtioNetHdr, outs [][]byte, sizes []int, offset int) (int, error) {
	if len(outs) < 1 || len(sizes) < 1 {
		return 0, ErrTooManySegments
	}
	if offset < 0 {
		return 0, ErrTooManySegments
	}
	outs[0] = grow(outs[0], offset, len(pkt))
	out := outs[0][offset : offset+len(pkt)]
	copy(out, pkt)
	if err := completeChecksum(out, hdr); err != nil {
		return 0, err
	}
	sizes[0] = len(out)
	return 1, nil
}

// completeChecksum finishes a NEEDS_CSUM checksum in place: the field at
// CsumStart+CsumOffset holds the pseudo-header sum; the one's complement of
// the sum over everything from CsumStart replaces it.
func completeChecksum(pkt []byte, hdr VirtioNetHdr) error {
	if hdr.Flags&VirtioNetHdrFNeedsCsum == 0 {
		return nil
	}
	start, field := int(hdr.CsumStart), int(hdr.CsumStart)+int(hdr.CsumOffset)
	if field+2 > len(pkt) {
		return ErrSuperPacket
	}
	sum := ^csumFold(csumAdd(0, pkt[start:]))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[field:], sum)
	return nil
}
