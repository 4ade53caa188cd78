package conn

import (
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

const benchBatch = 64

// benchSize is a full-MTU WireGuard datagram (1420-byte inner packet).
const benchSize = 1452

// benchModes are the paths compared in one run: the kernel offloads on,
// and both off (one datagram per message).
var benchModes = []struct {
	name string
	opts Options
}{{"offload", Options{}}, {"plain", Options{NoGSO: true, NoGRO: true}}}

func benchPair(b *testing.B, opts Options) (*Bind, *Bind, []Message, []Message) {
	tx, rx := openOpts(b, opts), openOpts(b, opts)
	out := make([]Message, benchBatch)
	for i := range out {
		out[i] = Message{Buf: make([]byte, benchSize), Ep: Endpoint{
			Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port()),
			Src: netip.MustParseAddr("127.0.0.1"),
		}}
	}
	return tx, rx, out, newMsgs(benchBatch, engineBuf)
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

// BenchmarkWrite sends batches of 64 1452-byte datagrams over loopback
// with a sticky source; the receiver is drained outside the timer.
func BenchmarkWrite(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) { benchWrite(b, mode.opts) })
	}
}

func benchWrite(b *testing.B, opts Options) {
	tx, rx, out, in := benchPair(b, opts)
	fd := rx.fdOf(unix.AF_INET)
	b.ReportAllocs()
	b.ResetTimer()
	b.SetBytes(benchBatch * benchSize)
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

// BenchmarkRead receives batches of 64 datagrams queued outside the timer,
// into engine-sized (64 KiB) buffers. With offloads the sender's GSO
// datagrams arrive coalesced.
func BenchmarkRead(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) { benchRead(b, mode.opts) })
	}
}

func benchRead(b *testing.B, opts Options) {
	tx, rx, out, in := benchPair(b, opts)
	fd := rx.fdOf(unix.AF_INET)
	b.ReportAllocs()
	b.ResetTimer()
	b.SetBytes(benchBatch * benchSize)
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

// BenchmarkReadUncoalesced is the cost of GRO's one-datagram-per-recvmmsg
// rule when nothing is coalesced: a plain sender, a receiver with GRO on
// or off.
func BenchmarkReadUncoalesced(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			tx, rx := openOpts(b, Options{NoGSO: true}), openOpts(b, mode.opts)
			out := make([]Message, benchBatch)
			for i := range out {
				out[i] = Message{Buf: make([]byte, benchSize), Ep: Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())}}
			}
			in, fd := newMsgs(benchBatch, engineBuf), rx.fdOf(unix.AF_INET)
			b.ReportAllocs()
			b.ResetTimer()
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
		})
	}
}
