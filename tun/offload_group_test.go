package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// flowSegments builds a super-packet of spec, gives it the source port
// sport (the partial checksum does not cover ports) and returns it, its
// header and its segments.
func flowSegments(t testing.TB, s superSpec, sport uint16) ([]byte, VirtioNetHdr, [][]byte) {
	t.Helper()
	pkt, hdr := buildSuper(s)
	binary.BigEndian.PutUint16(pkt[hdr.CsumStart:], sport)
	outs, sizes := makeBufs(64, 65536), make([]int, 64)
	n, err := Segment(pkt, hdr, outs, sizes, 0)
	if err != nil {
		t.Fatalf("Segment: %v", err)
	}
	segs := make([][]byte, n)
	for i := range n {
		segs[i] = outs[i][:sizes[i]]
	}
	return pkt, hdr, segs
}

// pureACK returns a segment of s's flow with no payload and a complete
// checksum: a packet the grouper must not merge or jump.
func pureACK(t testing.TB, s superSpec, sport uint16) []byte {
	t.Helper()
	s.payload, s.flags = nil, tcpFlagACK
	pkt, hdr := buildSuper(s)
	binary.BigEndian.PutUint16(pkt[hdr.CsumStart:], sport)
	hdr.GSOType, hdr.GSOSize = GSONone, 0
	outs, sizes := makeBufs(1, 2048), make([]int, 1)
	if _, err := Segment(pkt, hdr, outs, sizes, 0); err != nil {
		t.Fatalf("Segment: %v", err)
	}
	return outs[0][:sizes[0]]
}

// sportOf returns the source port of a TCP or UDP packet.
func sportOf(p []byte) uint16 {
	if p[0]>>4 == 6 {
		return binary.BigEndian.Uint16(p[40:])
	}
	return binary.BigEndian.Uint16(p[20:])
}

// coalesceNext is what one write takes from the front of pkts with
// interleaving off: the length n of the leading run and, for a run of more
// than one packet, the merged packet (virtio_net_hdr first) copied to
// dst[:size]; size is 0 for a lone packet. len(dst) bounds the merge.
func coalesceNext(c Coalescer, pkts [][]byte, offset int, dst []byte) (n, size int) {
	if len(pkts) < 2 {
		return len(pkts), 0
	}
	var g Grouper
	g.Group(c, pkts, offset, len(dst), false)
	if n = g.Size(0); n == 1 {
		return 1, 0
	}
	var hdr [MaxGatherHeader]byte
	var iov [groupWindow + 1][]byte
	for _, b := range g.Gather(hdr[:], iov[:0], pkts, offset, 0) {
		size += copy(dst[size:], b)
	}
	return n, size
}

// gathered returns group gi's super-packet as one slice: the bytes the
// writev of Gather's vector sends.
func gathered(g *Grouper, pkts [][]byte, offset, gi int) []byte {
	var hdr [MaxGatherHeader]byte
	return bytes.Join(g.Gather(hdr[:], nil, pkts, offset, gi), nil)
}

// regroup groups pkts, builds every group and segments the super-packets
// again, and returns the packets in write order, checking each rebuilt
// packet's lengths and checksums.
func regroup(t testing.TB, pkts [][]byte, interleave bool) (out [][]byte, g *Grouper) {
	t.Helper()
	g = new(Grouper)
	if w := g.Group(Coalescer{UDP: true}, pkts, 0, CoalesceBufSize, interleave); w != len(pkts) {
		t.Fatalf("grouped %d of %d", w, len(pkts))
	}
	seen := make([]bool, len(pkts))
	next := 0
	for gi := range g.Len() {
		if !interleave && g.Head(gi) != next {
			t.Fatalf("group %d starts at %d, want the next packet %d", gi, g.Head(gi), next)
		}
		k, members := g.Head(gi), 0
		for ; k >= 0; k = g.NextMember(k) {
			if seen[k] || (!interleave && k != next) {
				t.Fatalf("packet %d twice or out of order", k)
			}
			seen[k], next, members = true, k+1, members+1
		}
		if members != g.Size(gi) {
			t.Fatalf("group %d: %d members, Size %d", gi, members, g.Size(gi))
		}
		if g.Size(gi) == 1 {
			out = append(out, pkts[g.Head(gi)])
			continue
		}
		sp := gathered(g, pkts, 0, gi)
		hdr, err := DecodeVirtioNetHdr(sp)
		if err != nil {
			t.Fatal(err)
		}
		outs, sizes := makeBufs(64, 65536), make([]int, 64)
		n, err := Segment(sp[VirtioNetHdrLen:], hdr, outs, sizes, 0)
		if err != nil || n != g.Size(gi) {
			t.Fatalf("group %d of %d: re-segmented into %d (%v)", gi, g.Size(gi), n, err)
		}
		for i := range n {
			p := outs[i][:sizes[i]]
			checkPacket(t, p, p[0]>>4 == 6, hdr.GSOType == GSOUDPL4)
			out = append(out, p)
		}
	}
	for k, ok := range seen {
		if !ok {
			t.Fatalf("packet %d in no group", k)
		}
	}
	return out, g
}

// sameFlows fails unless out holds, per source port, exactly the packets
// of in in the same order.
func sameFlows(t testing.TB, in, out [][]byte) {
	t.Helper()
	if len(in) != len(out) {
		t.Fatalf("%d packets out of %d", len(out), len(in))
	}
	byFlow := func(pkts [][]byte) map[uint16][][]byte {
		m := map[uint16][][]byte{}
		for _, p := range pkts {
			m[sportOf(p)] = append(m[sportOf(p)], p)
		}
		return m
	}
	want, got := byFlow(in), byFlow(out)
	for port, w := range want {
		g := got[port]
		for i := range w {
			if i >= len(g) || !bytes.Equal(w[i], g[i]) {
				t.Fatalf("flow %d: packet %d differs after regrouping", port, i)
			}
		}
	}
}

// TestGroupFourInterleavedFlows: four TCP flows of three segments each,
// interleaved A B C D A B C D ..., become four super-packets equal to the
// originals; Next alone merges nothing there.
func TestGroupFourInterleavedFlows(t *testing.T) {
	var pkts [][]byte
	var supers [][]byte
	var hdrs []VirtioNetHdr
	var segs [][][]byte
	for f := range 4 {
		pl := bytes.Repeat([]byte{byte(f + 1)}, 3000)
		s := superSpec{payload: pl, gso: 1000, tcpOpts: 12, flags: tcpFlagACK, id: uint16(100 * f), seq: uint32(7 * f)}
		p, h, sg := flowSegments(t, s, uint16(40000+f))
		supers, hdrs, segs = append(supers, p), append(hdrs, h), append(segs, sg)
	}
	for i := range 3 {
		for f := range 4 {
			pkts = append(pkts, segs[f][i])
		}
	}
	if n, _ := coalesceNext(Coalescer{}, pkts, 0, make([]byte, CoalesceBufSize)); n != 1 {
		t.Fatalf("without interleaving: merged %d interleaved packets", n)
	}
	var g Grouper
	g.Group(Coalescer{}, pkts, 0, CoalesceBufSize, true)
	if g.Len() != 4 {
		t.Fatalf("%d groups, want 4", g.Len())
	}
	for f := range 4 {
		sp := gathered(&g, pkts, 0, f)
		hdr, err := DecodeVirtioNetHdr(sp)
		if err != nil || hdr != hdrs[f] || g.Size(f) != 3 {
			t.Fatalf("flow %d: header %+v, want %+v, %d members (%v)", f, hdr, hdrs[f], g.Size(f), err)
		}
		if !bytes.Equal(sp[VirtioNetHdrLen:], supers[f]) {
			t.Fatalf("flow %d: super-packet differs from the original", f)
		}
	}
	out, _ := regroup(t, pkts, true)
	sameFlows(t, pkts, out)
	out, g2 := regroup(t, pkts, false)
	sameFlows(t, pkts, out)
	if g2.Len() != len(pkts) {
		t.Fatalf("without interleaving: %d groups, want %d", g2.Len(), len(pkts))
	}
}

// TestGroupKeepsFlowOrder: a pure ACK of flow A ends A's group (A's later
// data may not jump it) but not B's; more flows than the table holds still
// come back whole and in order.
func TestGroupKeepsFlowOrder(t *testing.T) {
	s := superSpec{payload: make([]byte, 4000), gso: 1000, flags: tcpFlagACK}
	_, _, a := flowSegments(t, s, 1)
	_, _, b := flowSegments(t, s, 2)
	ack := pureACK(t, s, 1)
	pkts := [][]byte{a[0], b[0], a[1], ack, b[1], a[2], b[2], a[3], b[3]}
	out, g := regroup(t, pkts, true)
	sameFlows(t, pkts, out)
	if g.Len() != 4 || g.Size(0) != 2 || g.Size(1) != 4 || g.Size(2) != 1 || g.Size(3) != 2 {
		t.Fatalf("groups: %d", g.Len())
	}
	pkts = pkts[:0]
	for i := range 2 {
		for f := range maxOpenFlows + 3 {
			_, _, sg := flowSegments(t, superSpec{payload: make([]byte, 2000), gso: 1000, flags: tcpFlagACK}, uint16(f+10))
			pkts = append(pkts, sg[i])
		}
	}
	out, _ = regroup(t, pkts, true)
	sameFlows(t, pkts, out)
}

// TestGroupZeroAllocs: grouping and building do not allocate.
func TestGroupZeroAllocs(t *testing.T) {
	var pkts [][]byte
	for f := range 4 {
		_, _, sg := flowSegments(t, superSpec{payload: make([]byte, 20*1000), gso: 1000, flags: tcpFlagACK}, uint16(f))
		pkts = append(pkts, sg...)
	}
	g := new(Grouper)
	var ghdr [MaxGatherHeader]byte
	iov := make([][]byte, 0, groupWindow+1)
	allocs := testing.AllocsPerRun(20, func() {
		g.Group(Coalescer{}, pkts, 0, CoalesceBufSize, true)
		for gi := range g.Len() {
			if g.Size(gi) > 1 {
				iov = g.Gather(ghdr[:], iov, pkts, 0, gi)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
}

// TestWriteBlockedCount fills a one-page pipe: without interleaving the
// count is the written prefix; with it, a group written ahead makes the
// count cover it and the skipped packets are dropped and reported, so no
// packet is written twice.
func TestWriteBlockedCount(t *testing.T) {
	var segs [][][]byte
	for f := range 4 {
		_, _, sg := flowSegments(t, superSpec{payload: make([]byte, 3000), gso: 1000, flags: tcpFlagACK}, uint16(f+1))
		segs = append(segs, sg)
	}
	var pkts [][]byte
	for i := range 3 {
		for f := range 4 {
			pkts = append(pkts, segs[f][i])
		}
	}
	for _, tc := range []struct {
		interleave bool
		want       int
	}{{false, 3}, {true, 9}} {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 4096); err != nil {
			t.Fatal(err)
		}
		st := &offloadState{active: OffloadCsum | OffloadTSO4, interleave: tc.interleave}
		st.iov[0] = st.zeroHdr[:]
		n, err := st.write(p[1], pkts, 0)
		unix.Close(p[0])
		unix.Close(p[1])
		if n != tc.want || !errors.Is(err, ErrWouldBlock) {
			t.Errorf("interleave %v: n %d, want %d, err %v", tc.interleave, n, tc.want, err)
		}
		t.Logf("interleave %v: n %d, err %v", tc.interleave, n, err)
	}
}

// FuzzCoalesceInterleaved interleaves up to six flows (TCP or UDP, v4 or
// v6, some pure ACKs) as the fuzzer's pattern says, groups, builds and
// re-segments them: every flow must come back byte for byte and in order,
// with valid checksums, with and without interleaved merging.
func FuzzCoalesceInterleaved(f *testing.F) {
	f.Add(uint8(4), uint16(3000), uint16(1000), []byte{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3})
	f.Add(uint8(6), uint16(5000), uint16(700), []byte{0, 0, 1, 0x81, 2, 5, 3, 4, 0x80, 1})
	f.Add(uint8(3), uint16(100), uint16(33), []byte{})
	f.Fuzz(func(t *testing.T, kind uint8, plen, gso uint16, pattern []byte) {
		nflows := int(kind%6) + 1
		if gso == 0 || plen == 0 || plen > 16000 || (int(plen)+int(gso)-1)/int(gso) > 64 || len(pattern) > 400 {
			t.Skip()
		}
		var segs [][][]byte
		var specs []superSpec
		for fl := range nflows {
			s := superSpec{v6: (int(kind)>>3+fl)&1 != 0, udp: (int(kind)>>4+fl)%3 == 2, gso: int(gso),
				tcpOpts: 4 * (fl % 3), flags: tcpFlagACK, id: uint16(fl * 1000), seq: uint32(fl) << 28}
			if kind&0x80 != 0 && fl == 0 {
				s.flags |= tcpFlagPSH
			}
			s.payload = make([]byte, int(plen)-fl*int(plen)/8)
			for i := range s.payload {
				s.payload[i] = byte(fl*57 + i*31)
			}
			if len(s.payload) == 0 {
				s.payload = []byte{1}
			}
			_, _, sg := flowSegments(t, s, uint16(fl+1))
			segs, specs = append(segs, sg), append(specs, s)
		}
		var pkts [][]byte
		next := make([]int, nflows)
		take := func(fl int) {
			if next[fl] < len(segs[fl]) {
				pkts = append(pkts, segs[fl][next[fl]])
				next[fl]++
			}
		}
		for _, b := range pattern {
			fl := int(b&0x7f) % nflows
			if b&0x80 != 0 && !specs[fl].udp {
				pkts = append(pkts, pureACK(t, specs[fl], uint16(fl+1)))
				continue
			}
			take(fl)
		}
		for fl := range nflows {
			for next[fl] < len(segs[fl]) {
				take(fl)
			}
		}
		for len(pkts) > 0 {
			w := min(len(pkts), groupWindow)
			for _, inter := range []bool{true, false} {
				out, _ := regroup(t, pkts[:w], inter)
				sameFlows(t, pkts[:w], out)
			}
			pkts = pkts[w:]
		}
	})
}

// TestE2EOffloadInterleaveOn: a fresh TUN has the unlimited send buffer
// that lets Write merge interleaved flows (see offloadState.write).
func TestE2EOffloadInterleaveOn(t *testing.T) {
	needRoot(t)
	ns := testNetns(t, "inter")
	var d *Native
	var err error
	inNetns(t, ns, func() { d, err = CreateWithOptions("wgoi", 1420, Options{Offload: true}) })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.off.interleave {
		t.Fatal("TUN send buffer is not INT_MAX: interleaved merging is off")
	}
}

// TestCoalescePSHFirstAlone: a segment with PSH is never the first of a
// super-packet (segmentation keeps PSH on the last one only), with or
// without interleaving; it may end one.
func TestCoalescePSHFirstAlone(t *testing.T) {
	s := superSpec{payload: make([]byte, 2000), gso: 1000, flags: tcpFlagACK | tcpFlagPSH}
	_, _, a := flowSegments(t, s, 1) // PSH on a[1] only
	_, _, b := flowSegments(t, superSpec{payload: make([]byte, 2000), gso: 1000, flags: tcpFlagACK, seq: 2000, id: 2}, 1)
	pkts := [][]byte{a[1], b[0], b[1]}
	if n, _ := coalesceNext(Coalescer{}, pkts, 0, make([]byte, CoalesceBufSize)); n != 1 {
		t.Fatalf("merged %d after a PSH segment", n)
	}
	out, g := regroup(t, pkts, true)
	sameFlows(t, pkts, out)
	if g.Len() != 2 || g.Size(0) != 1 {
		t.Fatalf("%d groups, first of %d", g.Len(), g.Size(0))
	}
	if n, _ := coalesceNext(Coalescer{}, a, 0, make([]byte, CoalesceBufSize)); n != 2 {
		t.Fatalf("merged %d, want 2 (PSH last)", n)
	}
}

// TestGroupSkipsBadChecksums: a packet with a wrong TCP, UDP or IPv4
// header checksum is not merged (the kernel would recompute the checksums
// of a super-packet and check none); it is written alone, unchanged, for
// the kernel to drop, and its neighbours still merge.
func TestGroupSkipsBadChecksums(t *testing.T) {
	cases := []struct {
		name string
		spec superSpec
		off  func(p []byte) int // the byte to corrupt
	}{
		{"tcp4", superSpec{payload: make([]byte, 5000), gso: 1000, flags: tcpFlagACK}, func([]byte) int { return ipv4MinHdr + tcpCsumOff }},
		{"tcp6", superSpec{v6: true, payload: make([]byte, 5000), gso: 1000, flags: tcpFlagACK}, func([]byte) int { return ipv6Hdr + tcpCsumOff }},
		{"udp4", superSpec{udp: true, payload: make([]byte, 5000), gso: 1000}, func([]byte) int { return ipv4MinHdr + udpCsumOff }},
		{"udp6", superSpec{v6: true, udp: true, payload: make([]byte, 5000), gso: 1000}, func([]byte) int { return ipv6Hdr + udpCsumOff }},
		{"ip4hdr", superSpec{payload: make([]byte, 5000), gso: 1000, flags: tcpFlagACK}, func([]byte) int { return 10 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, segs := flowSegments(t, c.spec, 4242)
			if len(segs) != 5 {
				t.Fatalf("%d segments", len(segs))
			}
			segs[2] = bytes.Clone(segs[2])
			segs[2][c.off(segs[2])] ^= 0x5a
			bad := bytes.Clone(segs[2])
			out, g := regroup(t, segs, true)
			sameFlows(t, segs, out)
			if g.Len() != 3 || g.Size(0) != 2 || g.Size(1) != 1 || g.Size(2) != 2 {
				t.Fatalf("%d groups (%d/%d/%d), want 2, 1, 2", g.Len(), g.Size(0), g.Size(1), g.Size(2))
			}
			if !bytes.Equal(out[2], bad) {
				t.Fatal("the bad packet was changed")
			}
		})
	}
}
