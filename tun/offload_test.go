package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// slowSum is the deliberately slow reference checksum: 16-bit words one at
// a time, folded after every addition, as RFC 1071 describes it.
func slowSum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}

// pseudo builds the pseudo-header bytes for the slow checksum.
func pseudo(pkt []byte, v6 bool, proto uint8, l4len int) []byte {
	src, dst := ipAddrs(pkt, v6)
	p := append(append([]byte{}, src...), dst...)
	return append(p, 0, proto, byte(l4len>>8), byte(l4len))
}

// superSpec describes a super-packet as the kernel would hand it over.
type superSpec struct {
	v6, udp bool
	payload []byte
	gso     int
	tcpOpts int  // bytes of TCP options (multiple of 4)
	flags   byte // TCP flags
	id      uint16
	seq     uint32
}

// buildSuper returns the IP packet and its virtio_net_hdr with a partial
// (pseudo-header) checksum, as tun.c delivers a TSO/USO skb.
func buildSuper(s superSpec) ([]byte, VirtioNetHdr) {
	ipLen, proto, l4 := 20, uint8(protoTCP), 20+s.tcpOpts
	if s.v6 {
		ipLen = 40
	}
	if s.udp {
		proto, l4 = protoUDP, 8
	}
	p := make([]byte, ipLen+l4+len(s.payload))
	if s.v6 {
		p[0], p[1], p[3] = 0x60, 0x02, 0x34
		binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40))
		p[6], p[7] = proto, 64
		copy(p[8:], []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
		copy(p[24:], []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2})
	} else {
		p[0], p[1] = 0x45, 0x10
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		binary.BigEndian.PutUint16(p[4:], s.id)
		p[6], p[8], p[9] = 0x40, 64, proto
		copy(p[12:], []byte{198, 18, 0, 1, 198, 19, 0, 2})
		binary.BigEndian.PutUint16(p[10:], ipv4HeaderChecksum(p[:20]))
	}
	h := p[ipLen:]
	binary.BigEndian.PutUint16(h[0:], 40000)
	binary.BigEndian.PutUint16(h[2:], 5201)
	csumOff := uint16(udpCsumOff)
	if s.udp {
		binary.BigEndian.PutUint16(h[4:], uint16(len(h)))
	} else {
		csumOff = tcpCsumOff
		binary.BigEndian.PutUint32(h[4:], s.seq)
		binary.BigEndian.PutUint32(h[8:], 0x01020304)
		h[12], h[13] = byte(l4/4)<<4, s.flags
		binary.BigEndian.PutUint16(h[14:], 501)
		for i := 20; i < l4; i++ {
			h[i] = byte(i) // options: any bytes do, segmentation copies them
		}
	}
	copy(p[ipLen+l4:], s.payload)
	binary.BigEndian.PutUint16(h[csumOff:], slowSum(pseudo(p, s.v6, proto, len(h))))
	gsoType := GSOTCPv4
	switch {
	case s.udp:
		gsoType = GSOUDPL4
	case s.v6:
		gsoType = GSOTCPv6
	}
	return p, VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, GSOType: gsoType, HdrLen: uint16(ipLen + l4),
		GSOSize: uint16(s.gso), CsumStart: uint16(ipLen), CsumOffset: csumOff}
}

// checkPacket verifies lengths and checksums of one segment with the slow
// reference and returns its L4 header and payload.
func checkPacket(t testing.TB, p []byte, v6, udp bool) (l4hdr, payload []byte) {
	t.Helper()
	ipLen, proto := 20, uint8(protoTCP)
	if v6 {
		ipLen = 40
		if int(binary.BigEndian.Uint16(p[4:]))+40 != len(p) {
			t.Fatalf("IPv6 payload length %d, packet %d", binary.BigEndian.Uint16(p[4:]), len(p))
		}
	} else {
		if int(binary.BigEndian.Uint16(p[2:])) != len(p) {
			t.Fatalf("IPv4 total length %d, packet %d", binary.BigEndian.Uint16(p[2:]), len(p))
		}
		if slowSum(p[:20]) != 0xffff {
			t.Fatalf("bad IPv4 header checksum %x", p[:20])
		}
	}
	l4len := 8
	if udp {
		proto = protoUDP
		if int(binary.BigEndian.Uint16(p[ipLen+4:])) != len(p)-ipLen {
			t.Fatalf("UDP length %d", binary.BigEndian.Uint16(p[ipLen+4:]))
		}
	} else {
		l4len = int(p[ipLen+12]>>4) * 4
	}
	if slowSum(pseudo(p, v6, proto, len(p)-ipLen), p[ipLen:]) != 0xffff {
		t.Fatalf("bad L4 checksum")
	}
	return p[ipLen : ipLen+l4len], p[ipLen+l4len:]
}

func TestVirtioNetHdrRoundTrip(t *testing.T) {
	h := VirtioNetHdr{Flags: 1, GSOType: GSOTCPv6, HdrLen: 0x4c, GSOSize: 1388, CsumStart: 40, CsumOffset: 16}
	var b [VirtioNetHdrLen]byte
	h.Encode(b[:])
	want := []byte{1, 4, 0x4c, 0, 0x6c, 0x05, 40, 0, 16, 0}
	if !bytes.Equal(b[:], want) {
		t.Fatalf("encoded % x, want % x", b, want)
	}
	got, err := DecodeVirtioNetHdr(b[:])
	if err != nil || got != h {
		t.Fatalf("decode: %+v %v", got, err)
	}
	if _, err := DecodeVirtioNetHdr(b[:9]); !errors.Is(err, ErrVnetHdr) {
		t.Fatalf("short header: %v", err)
	}
}

// TestSegmentTCPv4Golden checks every rewritten field of a 3-segment
// IPv4 TCP super-packet with CWR, PSH and FIN set.
func TestSegmentTCPv4Golden(t *testing.T) {
	payload := make([]byte, 2500)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	pkt, hdr := buildSuper(superSpec{payload: payload, gso: 1000, tcpOpts: 12,
		flags: tcpFlagACK | tcpFlagPSH | tcpFlagFIN | tcpFlagCWR, id: 0xfffe, seq: 0xfffffc00})
	outs, sizes := makeBufs(4, 2000), make([]int, 4)
	n, err := Segment(pkt, hdr, outs, sizes, 16)
	if err != nil || n != 3 {
		t.Fatalf("Segment = %d, %v", n, err)
	}
	wantFlags := []byte{tcpFlagACK | tcpFlagCWR, tcpFlagACK, tcpFlagACK | tcpFlagPSH | tcpFlagFIN}
	var got []byte
	for i := range n {
		p := outs[i][16 : 16+sizes[i]]
		h, pl := checkPacket(t, p, false, false)
		if id := binary.BigEndian.Uint16(p[4:]); id != 0xfffe+uint16(i) {
			t.Errorf("segment %d: ID %#x", i, id)
		}
		if seq := binary.BigEndian.Uint32(h[4:]); seq != 0xfffffc00+uint32(i*1000) {
			t.Errorf("segment %d: seq %#x", i, seq)
		}
		if h[13] != wantFlags[i] {
			t.Errorf("segment %d: flags %#x, want %#x", i, h[13], wantFlags[i])
		}
		got = append(got, pl...)
	}
	if sizes[2] != 20+32+500 || !bytes.Equal(got, payload) {
		t.Fatalf("payload or last size wrong: %d", sizes[2])
	}
}

func TestSegmentUDPv6Golden(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab, 0xcd, 0xef}, 1001)
	pkt, hdr := buildSuper(superSpec{v6: true, udp: true, payload: payload, gso: 1200})
	outs, sizes := makeBufs(3, 1400), make([]int, 3)
	n, err := Segment(pkt, hdr, outs, sizes, 0)
	if err != nil || n != 3 {
		t.Fatalf("Segment = %d, %v", n, err)
	}
	var got []byte
	for i := range n {
		_, pl := checkPacket(t, outs[i][:sizes[i]], true, true)
		got = append(got, pl...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload differs")
	}
	if _, err := Segment(pkt, hdr, outs[:2], sizes, 0); !errors.Is(err, ErrTooManySegments) {
		t.Fatalf("2 buffers for 3 segments: %v", err)
	}
}

// TestSegmentNoneCompletesChecksum: a GSO_NONE packet with NEEDS_CSUM
// leaves Segment with a full checksum.
func TestSegmentNoneCompletesChecksum(t *testing.T) {
	pkt, hdr := buildSuper(superSpec{udp: true, payload: []byte("hello, world!"), gso: 100})
	hdr.GSOType, hdr.GSOSize = GSONone, 0
	outs, sizes := makeBufs(1, 100), make([]int, 1)
	n, err := Segment(pkt, hdr, outs, sizes, 4)
	if err != nil || n != 1 {
		t.Fatalf("Segment = %d, %v", n, err)
	}
	checkPacket(t, outs[0][4:4+sizes[0]], false, true)
	hdr.CsumOffset = 200
	if _, err := Segment(pkt, hdr, outs, sizes, 4); !errors.Is(err, ErrSuperPacket) {
		t.Fatalf("checksum field out of bounds: %v", err)
	}
}

func TestSegmentRejects(t *testing.T) {
	pkt, hdr := buildSuper(superSpec{payload: make([]byte, 3000), gso: 1000, flags: tcpFlagACK})
	outs, sizes := makeBufs(4, 1100), make([]int, 4)
	cases := map[string]func(p []byte, h *VirtioNetHdr){
		"gso 0":           func(p []byte, h *VirtioNetHdr) { h.GSOSize = 0 },
		"ufo":             func(p []byte, h *VirtioNetHdr) { h.GSOType = GSOUDP },
		"v6 type on v4":   func(p []byte, h *VirtioNetHdr) { h.GSOType = GSOTCPv6 },
		"udp type on tcp": func(p []byte, h *VirtioNetHdr) { h.GSOType = GSOUDPL4 },
		"bad length":      func(p []byte, h *VirtioNetHdr) { p[3]++ },
		"fragment":        func(p []byte, h *VirtioNetHdr) { p[6] |= 0x20 },
		"doff 4":          func(p []byte, h *VirtioNetHdr) { p[32] = 0x10 },
		"version 5":       func(p []byte, h *VirtioNetHdr) { p[0] = 0x55 },
	}
	for name, mutate := range cases {
		p, h := append([]byte{}, pkt...), hdr
		mutate(p, &h)
		if n, err := Segment(p, h, outs, sizes, 0); err == nil {
			t.Errorf("%s: accepted, %d segments", name, n)
		}
	}
	if _, err := Segment(pkt, hdr, makeBufs(2, 2000), sizes, 0); !errors.Is(err, ErrTooManySegments) {
		t.Errorf("too few buffers: %v", err)
	}
}

// TestSegmentGrowsSmallBuffers: a segment larger than its buffer (a route
// MTU above the link's makes the kernel hand over such packets) gets a new
// buffer with GrowTail bytes behind it; it was dropped, and a packet of
// 1441-1456 bytes at MTU 1420 was counted as "no key".
func TestSegmentGrowsSmallBuffers(t *testing.T) {
	pkt, hdr := buildSuper(superSpec{payload: make([]byte, 3000), gso: 1400, flags: tcpFlagACK})
	outs, sizes := makeBufs(4, 1000), make([]int, 4)
	small := outs[0]
	n, err := Segment(pkt, hdr, outs, sizes, 16)
	if err != nil || n != 3 {
		t.Fatalf("Segment = %d, %v", n, err)
	}
	if &outs[0][0] == &small[0] || len(outs[0]) != 16+sizes[0]+GrowTail {
		t.Fatalf("buffer not replaced: len %d for a %d-byte segment", len(outs[0]), sizes[0])
	}
	for i := range n {
		checkPacket(t, outs[i][16:16+sizes[i]], false, false)
	}
	one := []byte{0x45, 0, 0, 0}
	one = append(one, make([]byte, 1496)...)
	binary.BigEndian.PutUint16(one[2:], uint16(len(one)))
	outs = makeBufs(1, 1472)
	if n, err := Segment(one, VirtioNetHdr{}, outs, sizes, 16); err != nil || n != 1 || sizes[0] != 1500 || len(outs[0]) < 16+1500+GrowTail {
		t.Fatalf("single 1500-byte packet into a 1472-byte buffer: %d, %v, size %d, buffer %d", n, err, sizes[0], len(outs[0]))
	}
}

// segmentAndCoalesce segments a super-packet and merges the segments back,
// failing the test unless the round trip gives the same bytes and header.
func segmentAndCoalesce(t testing.TB, s superSpec) {
	pkt, hdr := buildSuper(s)
	outs, sizes := makeBufs(64, 65536+64), make([]int, 64)
	n, err := Segment(pkt, hdr, outs, sizes, 16)
	if err != nil {
		t.Fatalf("Segment: %v", err)
	}
	pkts := make([][]byte, n)
	var payload []byte
	for i := range n {
		pkts[i] = outs[i][:16+sizes[i]]
		_, pl := checkPacket(t, pkts[i][16:], s.v6, s.udp)
		payload = append(payload, pl...)
	}
	if !bytes.Equal(payload, s.payload) {
		t.Fatalf("segments carry other payload")
	}
	dst := make([]byte, CoalesceBufSize)
	m, size := coalesceNext(Coalescer{UDP: true}, pkts, 16, dst)
	if m != n {
		t.Fatalf("merged %d of %d segments", m, n)
	}
	if n == 1 {
		if size != 0 {
			t.Fatalf("single packet: size %d", size)
		}
		return
	}
	got, err := DecodeVirtioNetHdr(dst[:size])
	if err != nil || got != hdr {
		t.Fatalf("header %+v, want %+v (%v)", got, hdr, err)
	}
	if !bytes.Equal(dst[VirtioNetHdrLen:size], pkt) {
		t.Fatalf("merged packet differs from the original")
	}
}

func TestSegmentCoalesceRoundTrip(t *testing.T) {
	pl := make([]byte, 65535)
	for i := range pl {
		pl[i] = byte(i * 13)
	}
	segmentAndCoalesce(t, superSpec{payload: pl[:65535-20-20-12], gso: 1388, tcpOpts: 12, flags: tcpFlagACK | tcpFlagPSH, id: 65500})
	segmentAndCoalesce(t, superSpec{v6: true, payload: pl[:65535-40-32], gso: 1368, tcpOpts: 12, flags: tcpFlagACK})
	segmentAndCoalesce(t, superSpec{udp: true, payload: pl[:64*1000], gso: 1000})
	segmentAndCoalesce(t, superSpec{v6: true, udp: true, payload: pl[:5000], gso: 1232})
	segmentAndCoalesce(t, superSpec{payload: pl[:10], gso: 1388, flags: tcpFlagACK})
}

// TestCoalesceStopsAtFlowChange: a different flow, a gap in the sequence
// or a pure ACK ends the run; UDP merges only when allowed.
func TestCoalesceStopsAtFlowChange(t *testing.T) {
	seg := func(s superSpec) []byte {
		p, h := buildSuper(s)
		outs, sizes := makeBufs(1, 2000), make([]int, 1)
		if _, err := Segment(p, h, outs, sizes, 0); err != nil {
			t.Fatal(err)
		}
		return outs[0][:sizes[0]]
	}
	a := seg(superSpec{payload: make([]byte, 1000), gso: 1000, flags: tcpFlagACK, seq: 0, id: 1})
	b := seg(superSpec{payload: make([]byte, 1000), gso: 1000, flags: tcpFlagACK, seq: 1000, id: 2})
	gap := seg(superSpec{payload: make([]byte, 1000), gso: 1000, flags: tcpFlagACK, seq: 2001, id: 3})
	ack := seg(superSpec{payload: nil, gso: 1000, flags: tcpFlagACK, seq: 2000, id: 3})
	dst := make([]byte, CoalesceBufSize)
	var c Coalescer
	if n, _ := coalesceNext(c, [][]byte{a, b, gap}, 0, dst); n != 2 {
		t.Errorf("gap: merged %d", n)
	}
	if n, _ := coalesceNext(c, [][]byte{a, b, ack}, 0, dst); n != 2 {
		t.Errorf("pure ACK: merged %d", n)
	}
	if n, _ := coalesceNext(c, [][]byte{a, gap}, 0, dst); n != 1 {
		t.Errorf("a, gap: merged %d", n)
	}
	u1 := seg(superSpec{udp: true, payload: make([]byte, 500), gso: 500, id: 7})
	u2 := seg(superSpec{udp: true, payload: make([]byte, 500), gso: 500, id: 8})
	if n, _ := coalesceNext(c, [][]byte{u1, u2}, 0, dst); n != 1 {
		t.Errorf("UDP without USO: merged %d", n)
	}
	if n, _ := coalesceNext(Coalescer{UDP: true}, [][]byte{u1, u2}, 0, dst); n != 2 {
		t.Errorf("UDP with USO: merged %d", n)
	}
	if n, _ := coalesceNext(c, [][]byte{a, b}, 0, dst[:2000]); n != 1 {
		t.Errorf("small dst: merged %d", n)
	}
}

func TestOffloadZeroAllocs(t *testing.T) {
	pkt, hdr := buildSuper(superSpec{payload: make([]byte, 65535-40), gso: 1380, flags: tcpFlagACK})
	outs, sizes := makeBufs(64, 65536+64), make([]int, 64)
	g := new(Grouper)
	var ghdr [MaxGatherHeader]byte
	iov := make([][]byte, 0, groupWindow+1)
	var n int
	allocs := testing.AllocsPerRun(20, func() {
		n, _ = Segment(pkt, hdr, outs, sizes, 16)
		for i := range n {
			outs[i] = outs[i][:16+sizes[i]]
		}
		g.Group(Coalescer{}, outs[:n], 16, CoalesceBufSize, false)
		iov = g.Gather(ghdr[:], iov, outs[:n], 16, 0)
		for i := range n {
			outs[i] = outs[i][:cap(outs[i])]
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per segment+coalesce", allocs)
	}
}

func TestCsumAddMatchesSlow(t *testing.T) {
	b := make([]byte, 300)
	for i := range b {
		b[i] = 0xff - byte(i%3)
	}
	for n := range len(b) {
		if got, want := csumFold(csumAdd(0, b[:n])), slowSum(b[:n]); got != want {
			t.Fatalf("len %d: %#x, want %#x", n, got, want)
		}
	}
	// Random bytes and lengths, summed in two even-length parts and one
	// odd or even tail, against the byte-at-a-time reference.
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4000)
	for range 2000 {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		n := rng.IntN(len(buf))
		a := rng.IntN(n+1) &^ 1
		c := a + (rng.IntN(n-a+1) &^ 1)
		got := csumFold(csumAdd(csumAdd(csumAdd(0, buf[:a]), buf[a:c]), buf[c:n]))
		if want := slowSum(buf[:n]); got != want {
			t.Fatalf("len %d split %d/%d: %#x, want %#x", n, a, c, got, want)
		}
	}
	// All ones and all zeros, the one's-complement edge values.
	for _, v := range []byte{0x00, 0xff} {
		for n := range 200 {
			b := bytes.Repeat([]byte{v}, n)
			if got, want := csumFold(csumAdd(0, b)), slowSum(b); got != want {
				t.Fatalf("%d bytes of %#x: %#x, want %#x", n, v, got, want)
			}
		}
	}
}

// TestHeaderSumsMatchSlow checks the word-at-a-time IPv4 header checksum
// (every header length, any bytes in the checksum field) and pseudo-header
// sum (IPv4 and IPv6, every protocol and length edge) against the
// byte-at-a-time reference, including the all-ones and all-zeros headers.
func TestHeaderSumsMatchSlow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		h := make([]byte, 20+4*rng.IntN(11))
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		switch i {
		case 0:
			clear(h)
		case 1:
			for j := range h {
				h[j] = 0xff
			}
		}
		z := bytes.Clone(h)
		z[10], z[11] = 0, 0
		if got, want := ipv4HeaderChecksum(h), ^slowSum(z); got != want {
			t.Fatalf("header %x: checksum %#x, want %#x", h, got, want)
		}
		binary.BigEndian.PutUint16(h[10:], ipv4HeaderChecksum(h))
		if csumFold(ipv4HeaderSum(h)) != 0xffff || slowSum(h) != 0xffff {
			t.Fatalf("header %x does not check", h)
		}
		for _, n := range []int{4, 16} {
			src, dst := h[:n], z[len(z)-n:]
			proto, l4len := uint8(rng.Uint32()), rng.IntN(65536)
			if i == 2 {
				l4len = 65535
			}
			p := append(append(append([]byte{}, src...), dst...), 0, proto, byte(l4len>>8), byte(l4len))
			if got, want := csumFold(pseudoSum(src, dst, proto, l4len)), slowSum(p); got != want {
				t.Fatalf("pseudo-header %x: %#x, want %#x", p, got, want)
			}
		}
	}
}

// TestCsumVectorMatchesScalar checks the AVX2 sum (where the CPU has it)
// against the scalar loop and the byte-at-a-time reference on long slices:
// random bytes at every alignment of start and length near the 64-byte
// block edges, and all-0xff slices past the 1 MiB chunk bound, where the
// vector lanes come closest to overflowing.
func TestCsumVectorMatchesScalar(t *testing.T) {
	if !hasAVX2 {
		t.Log("no AVX2 on this CPU (or purego): the scalar path alone is in use")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 70000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for range 300 {
		off := rng.IntN(64)
		n := rng.IntN(len(buf) - off)
		if rng.IntN(2) == 0 {
			n = min(len(buf)-off, 256+64*rng.IntN(8)+rng.IntN(3)-1)
		}
		b := buf[off : off+n]
		want := slowSum(b)
		if got := csumFold(csumAdd(0, b)); got != want {
			t.Fatalf("off %d len %d: csumAdd %#x, want %#x", off, n, got, want)
		}
		if got := csumFold(csumScalar(0, 0, b)); got != want {
			t.Fatalf("off %d len %d: scalar %#x, want %#x", off, n, got, want)
		}
	}
	for _, n := range []int{1 << 20, 1<<20 + 64, 3<<20 + 130} {
		b := bytes.Repeat([]byte{0xff}, n)
		if got, want := csumFold(csumAdd(0, b)), csumFold(csumScalar(0, 0, b)); got != want {
			t.Fatalf("%d bytes of 0xff: %#x, scalar %#x", n, got, want)
		}
	}
}

// TestSegmentIPv6ExtensionHeaders: a TCP socket with IPV6_HOPOPTS or
// IPV6_DSTOPTS gets TSO super-packets with those headers between the IPv6
// and TCP headers. Every segment carries them unchanged, with a payload
// length that counts them and a valid TCP checksum; such super-packets
// were dropped, and the connection hung after slow start. A routing header
// (which would change the pseudo-header) is still refused.
func TestSegmentIPv6ExtensionHeaders(t *testing.T) {
	payload := make([]byte, 2500)
	for i := range payload {
		payload[i] = byte(i*13 + 1)
	}
	plain, plainHdr := buildSuper(superSpec{v6: true, payload: payload, gso: 1000, flags: tcpFlagACK | tcpFlagPSH, seq: 7})
	hbh := []byte{ipv6DestOpts, 0, 1, 4, 0, 0, 0, 0}
	dst := []byte{protoTCP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	cases := []struct {
		name  string
		first byte
		ext   []byte
		ok    bool
	}{
		{"destination options", ipv6DestOpts, dst, true},
		{"hop-by-hop then destination options", ipv6HopByHop, append(append([]byte{}, hbh...), dst...), true},
		{"routing header", 43, []byte{protoTCP, 0, 4, 0, 0, 0, 0, 0}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkt := append(append(append([]byte{}, plain[:40]...), c.ext...), plain[40:]...)
			pkt[6] = c.first
			binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
			hdr := plainHdr
			hdr.HdrLen += uint16(len(c.ext))
			hdr.CsumStart += uint16(len(c.ext))
			outs, sizes := makeBufs(4, 2000), make([]int, 4)
			n, err := Segment(pkt, hdr, outs, sizes, 16)
			if !c.ok {
				if err == nil {
					t.Fatalf("Segment = %d, nil; want an error", n)
				}
				return
			}
			if err != nil || n != 3 {
				t.Fatalf("Segment = %d, %v", n, err)
			}
			var got []byte
			for i := range n {
				p := outs[i][16 : 16+sizes[i]]
				if int(binary.BigEndian.Uint16(p[4:]))+40 != len(p) {
					t.Fatalf("segment %d: payload length %d, packet %d", i, binary.BigEndian.Uint16(p[4:]), len(p))
				}
				if p[6] != c.first || !bytes.Equal(p[40:40+len(c.ext)], c.ext) {
					t.Fatalf("segment %d: extension headers changed: %x", i, p[40:40+len(c.ext)])
				}
				// Without the extension headers the segment is a plain
				// IPv6 TCP packet with the same pseudo-header.
				bare := append(append([]byte{}, p[:40]...), p[40+len(c.ext):]...)
				bare[6] = protoTCP
				binary.BigEndian.PutUint16(bare[4:], uint16(len(bare)-40))
				h, pl := checkPacket(t, bare, true, false)
				if seq := binary.BigEndian.Uint32(h[4:]); seq != 7+uint32(i*1000) {
					t.Errorf("segment %d: seq %d", i, seq)
				}
				got = append(got, pl...)
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("payload differs")
			}
		})
	}
}
