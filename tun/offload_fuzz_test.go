package tun

import (
	"encoding/binary"
	"testing"
)

// FuzzSegmentCoalesce builds IPv4/IPv6 TCP and UDP super-packets from the
// fuzzer's inputs, segments them, checks every segment's lengths and
// checksums against the slow reference, and merges them back: the result
// must be the original packet and header, byte for byte.
func FuzzSegmentCoalesce(f *testing.F) {
	f.Add(uint8(0), uint16(3000), uint16(1000), uint8(3), uint16(1), uint32(5), byte(1))
	f.Add(uint8(1), uint16(65000), uint16(1368), uint8(0), uint16(65535), uint32(0xfffffff0), byte(0))
	f.Add(uint8(2), uint16(64000), uint16(1000), uint8(0), uint16(0), uint32(0), byte(0))
	f.Add(uint8(3), uint16(7), uint16(1), uint8(0), uint16(0), uint32(0), byte(0))
	f.Fuzz(func(t *testing.T, kind uint8, plen, gso uint16, opts uint8, id uint16, seq uint32, fill byte) {
		s := superSpec{v6: kind&1 != 0, udp: kind&2 != 0, gso: int(gso), tcpOpts: int(opts%11) * 4,
			flags: tcpFlagACK, id: id, seq: seq}
		if kind&4 != 0 {
			s.flags |= tcpFlagPSH
		}
		hdrLen := 20 + 20 + s.tcpOpts
		if s.v6 {
			hdrLen += 20
		}
		if s.udp {
			hdrLen = hdrLen - 20 - s.tcpOpts + 8
		}
		// Stay inside what the kernel sends: at most 64 KiB, a positive
		// segment size, at most 64 segments (our buffers), 64 for USO.
		if s.gso == 0 || int(plen)+hdrLen > 65535 || plen == 0 {
			t.Skip()
		}
		if (int(plen)+s.gso-1)/s.gso > 64 {
			t.Skip()
		}
		s.payload = make([]byte, plen)
		for i := range s.payload {
			s.payload[i] = fill + byte(i*31)
		}
		segmentAndCoalesce(t, s)
	})
}

// FuzzSegment feeds arbitrary bytes and headers to Segment: it must not
// panic, and whatever it accepts must come out as well-formed packets.
func FuzzSegment(f *testing.F) {
	pkt, hdr := buildSuper(superSpec{payload: make([]byte, 3000), gso: 1000, flags: tcpFlagACK})
	var hb [VirtioNetHdrLen]byte
	hdr.Encode(hb[:])
	f.Add(hb[:], pkt)
	pkt6, hdr6 := buildSuper(superSpec{v6: true, udp: true, payload: make([]byte, 300), gso: 100})
	hdr6.Encode(hb[:])
	f.Add(hb[:], pkt6)
	f.Fuzz(func(t *testing.T, hb, pkt []byte) {
		hdr, err := DecodeVirtioNetHdr(hb)
		if err != nil {
			return
		}
		outs, sizes := makeBufs(8, 2048), make([]int, 8)
		n, err := Segment(pkt, hdr, outs, sizes, 8)
		// The ECN bit may be ORed into any type (the kernel does not
		// check it against the protocol either); Segment goes by the rest.
		gso := hdr.GSOType &^ GSOECN
		if err != nil || gso == GSONone {
			return
		}
		for i := range n {
			p := outs[i][8 : 8+sizes[i]]
			v6 := p[0]>>4 == 6
			checkPacket(t, p, v6, gso == GSOUDPL4)
			if !v6 && binary.BigEndian.Uint16(p[4:]) != binary.BigEndian.Uint16(pkt[4:])+uint16(i) {
				t.Fatalf("segment %d: wrong ID", i)
			}
		}
	})
}
