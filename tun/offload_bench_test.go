package tun

import "testing"

// BenchmarkSegment splits a 64 KiB IPv4 TCP super-packet at MTU 1420
// (1380 payload bytes per segment with no options: 48 segments).
func BenchmarkSegment(b *testing.B) {
	pkt, hdr := buildSuper(superSpec{payload: make([]byte, 65535-40), gso: 1380, flags: tcpFlagACK})
	outs, sizes := makeBufs(64, 65536+64), make([]int, 64)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Segment(pkt, hdr, outs, sizes, 16); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCsum1420(b *testing.B) {
	buf := make([]byte, 1420)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(buf)))
	var acc uint64
	for b.Loop() {
		acc = csumAdd(acc, buf)
	}
	_ = acc
}

// BenchmarkGroupGather groups 44 segments of 1380 bytes of one flow and
// gathers the resulting super-packet for writev (the TUN write path).
func BenchmarkGroupGather(b *testing.B) {
	pkt, hdr := buildSuper(superSpec{payload: make([]byte, 44*1380), gso: 1380, flags: tcpFlagACK})
	outs, sizes := makeBufs(44, 2048), make([]int, 44)
	n, err := Segment(pkt, hdr, outs, sizes, 16)
	if err != nil || n != 44 {
		b.Fatal(n, err)
	}
	for i := range outs {
		outs[i] = outs[i][:16+sizes[i]]
	}
	var g Grouper
	var ghdr [MaxGatherHeader]byte
	iov := make([][]byte, 0, groupWindow+1)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if g.Group(Coalescer{}, outs, 16, CoalesceBufSize, true); g.Len() != 1 {
			b.Fatal(g.Len())
		}
		iov = g.Gather(ghdr[:], iov, outs, 16, 0)
	}
}

// BenchmarkCsum64K sums a TSO super-packet's worth of payload.
func BenchmarkCsum64K(b *testing.B) {
	buf := make([]byte, 65535-40)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(buf)))
	var acc uint64
	for b.Loop() {
		acc = csumAdd(acc, buf)
	}
	_ = acc
}

// BenchmarkCsumScalar1420 is the scalar loop alone, for comparison.
func BenchmarkCsumScalar1420(b *testing.B) {
	buf := make([]byte, 1420)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(buf)))
	var acc uint64
	for b.Loop() {
		acc = csumScalar(acc, 0, buf)
	}
	_ = acc
}
