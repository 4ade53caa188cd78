package device

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// TestDataPathNoAllocs checks that a packet's whole trip (TUN read, route,
// seal, send, receive, open, checks, TUN write) allocates nothing once the
// buffer pools are warm, with and without crypto workers. The test's own
// side (writing and reading the socketpair TUNs into fixed buffers) does
// not allocate either, so the process-wide malloc count is the device's.
func TestDataPathNoAllocs(t *testing.T) {
	for _, workers := range []int{2, -1} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			checkNoGoroutineLeak(t)
			clock := newFakeClock()
			a, b := newTestNodeWorkers(t, clock, 1, workers), newTestNodeWorkers(t, clock, 2, workers)
			connect(t, a, b, lo4, 0)
			exchange(t, a, b, udp4(a.addr, b.addr, []byte("warm up")))
			// Both directions: a reply re-arms the sender's new-handshake
			// timer on every send, as TCP's ACKs do.
			pkts := [][]byte{
				udp4(a.addr, b.addr, bytes.Repeat([]byte{7}, 64)),
				udp4(a.addr, b.addr, bytes.Repeat([]byte{9}, 1300)),
			}
			replies := [][]byte{
				udp4(b.addr, a.addr, bytes.Repeat([]byte{3}, 40)),
				udp4(b.addr, a.addr, bytes.Repeat([]byte{5}, 1000)),
			}
			buf := make([]byte, 1<<16)
			oneWay := func(from, to *testNode, pkt []byte) {
				if _, err := from.host.Write(pkt); err != nil {
					t.Fatalf("write: %v", err)
				}
				if err := to.host.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
					t.Fatal(err)
				}
				k, err := to.host.Read(buf)
				if err != nil || !bytes.Equal(buf[:k], pkt) {
					t.Fatalf("packet not delivered intact (err %v)", err)
				}
			}
			roundTrip := func(i int) {
				oneWay(a, b, pkts[i%2])
				oneWay(b, a, replies[i%2])
			}
			for i := range 300 { // fill the pools
				roundTrip(i)
			}
			const n = 2000
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range n {
				roundTrip(i)
			}
			runtime.ReadMemStats(&after)
			// A few allocations from the runtime and the test's timers are
			// allowed; one per packet (or per batch) is not.
			if allocs := after.Mallocs - before.Mallocs; allocs > n/20 {
				t.Errorf("%d packets through two devices made %d heap allocations, want about none", n, allocs)
			}
		})
	}
}

// TestDropPathNoAllocs checks that dropping a packet allocates nothing
// either: a host program sending to an address no peer covers (counted,
// answered by rate-limited ICMP, logged at most once per 5 s) must not
// cost an allocation per packet.
func TestDropPathNoAllocs(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNodeWorkers(t, clock, 1, -1), newTestNodeWorkers(t, clock, 2, -1)
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("warm up")))
	pkt := udp4(a.addr, netip.MustParseAddr("198.18.77.1"), bytes.Repeat([]byte{1}, 100))
	drop := func(n int) {
		want := a.dev.Counters().NoRoute + uint64(n)
		for range n {
			if _, err := a.host.Write(pkt); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for a.dev.Counters().NoRoute < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := a.dev.Counters().NoRoute; got < want {
			t.Fatalf("%d no-route drops, want %d", got, want)
		}
	}
	drop(300) // warm the pools and the limiters
	const n = 2000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n / 100 {
		drop(100)
	}
	runtime.ReadMemStats(&after)
	if allocs := after.Mallocs - before.Mallocs; allocs > n/20 {
		t.Errorf("%d dropped packets made %d heap allocations, want about none", n, allocs)
	}
}

// TestFirstHandshakeAllocatesLittle: the first handshake after start and the
// packet that asked for it allocate well under a megabyte on both devices.
// The UDP receive buffers (4 MiB) were made by the first read of a
// datagram, so the first initiation waited for the heap to grow and a GC
// cycle to start: 10 ms to answer it against 1 ms for later ones.
func TestFirstHandshakeAllocatesLittle(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("first")))
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("the first handshake allocated %d KiB", got>>10)
	}
}
