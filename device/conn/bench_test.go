package conn

import (
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

const benchBatch = 64

func benchPair(b *testing.B) (*Bind, *Bind, []Message, []Message) {
	tx, rx := openT(b), openT(b)
	out := make([]Message, benchBatch)
	for i := range out {
		out[i] = Message{Buf: make([]byte, 1400), Ep: Endpoint{
			Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port()),
			Src: netip.MustParseAddr("127.0.0.1"),
		}}
	}
	return tx, rx, out, newMsgs(benchBatch, 2048)
}

// drain reads up to want datagrams from fd, bounded in tries.
func drain(b *testing.B, rx *Bind, fd int, in []Message, want int) int {
	got := 0
	for tries := 0; got < want && tries < 100000; tries++ {
		n, err := rx.Read(fd, in)
		if err != nil && !errors.Is(err, ErrWouldBlock) {
			b.Fatal(err)
		}
		got += n
	}
	return got
}

// BenchmarkWrite sends batches of 64 1400-byte datagrams over loopback
// with a sticky source; the receiver is drained outside the timer.
func BenchmarkWrite(b *testing.B) {
	tx, rx, out, in := benchPair(b)
	fd := rx.fdOf(unix.AF_INET)
	b.ReportAllocs()
	b.ResetTimer()
	b.SetBytes(benchBatch * 1400)
	for i := 0; i < b.N; i++ {
		if n, err := tx.Write(out); n != benchBatch || err != nil {
			b.Fatalf("Write = %d, %v", n, err)
		}
		b.StopTimer()
		drain(b, rx, fd, in, benchBatch)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/packet")
}

// BenchmarkRead receives batches of 64 datagrams queued outside the timer.
func BenchmarkRead(b *testing.B) {
	tx, rx, out, in := benchPair(b)
	fd := rx.fdOf(unix.AF_INET)
	b.ReportAllocs()
	b.ResetTimer()
	b.SetBytes(benchBatch * 1400)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if n, err := tx.Write(out); n != benchBatch || err != nil {
			b.Fatalf("Write = %d, %v", n, err)
		}
		b.StartTimer()
		if got := drain(b, rx, fd, in, benchBatch); got != benchBatch {
			b.Fatalf("read %d of %d", got, benchBatch)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/packet")
}
