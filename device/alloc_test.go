package device

import (
	"bytes"
	"fmt"
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
			pkts := [][]byte{
				udp4(a.addr, b.addr, bytes.Repeat([]byte{7}, 64)),
				udp4(a.addr, b.addr, bytes.Repeat([]byte{9}, 1300)),
			}
			buf := make([]byte, 1<<16)
			roundTrip := func(pkt []byte) {
				if _, err := a.host.Write(pkt); err != nil {
					t.Fatalf("write: %v", err)
				}
				if err := b.host.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
					t.Fatal(err)
				}
				k, err := b.host.Read(buf)
				if err != nil || !bytes.Equal(buf[:k], pkt) {
					t.Fatalf("packet not delivered intact (err %v)", err)
				}
			}
			for i := range 300 { // fill the pools
				roundTrip(pkts[i%2])
			}
			const n = 2000
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range n {
				roundTrip(pkts[i%2])
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
