package allowedips

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentLookupDuringWrites runs lock-free readers against a writer
// that keeps reshaping the very nodes they walk: the stable /24s of
// 198.18.0.0/16 must always resolve to their owners while /25s, /32s and
// IPv6 prefixes next to them come and go. Run it under -race.
func TestConcurrentLookupDuringWrites(t *testing.T) {
	var tab Table[int]
	for i := range 64 {
		mustInsert(t, &tab, netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24, 1000+i)
	}
	mustInsert(t, &tab, netip.MustParseAddr("fd00::"), 16, 2000)

	deadline := time.Now().Add(300 * time.Millisecond)
	var stop atomic.Bool
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 5_000_000; i++ {
				x := byte(i*7 + r)
				a := netip.AddrFrom4([4]byte{198, 18, x % 64, x % 128})
				if v, ok := tab.Lookup(a); !ok || v != 1000+int(x%64) {
					wrong.Add(1)
				}
				b := netip.AddrFrom16([16]byte{0xfd, 0, 0xff, x})
				if v, ok := tab.Lookup(b); !ok || v != 2000 {
					wrong.Add(1)
				}
			}
		})
	}
	for i := 0; i < 200_000 && time.Now().Before(deadline); i++ {
		x := byte(i)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, x % 64, 128 + x%128}), 25+i%8)
		q := netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, byte(i) % 0x80, x, 15: 1}), 24+i%105)
		switch i % 4 {
		case 0, 1:
			_ = tab.Insert(p, i%3)
			_ = tab.Insert(q, i%3)
		case 2:
			tab.RemoveAll(i % 3)
		case 3:
			tab.Remove(p, i%3)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Fatalf("%d lookups returned a wrong value during writes", n)
	}
	if err := tab.check(); err != nil {
		t.Fatal(err)
	}
}
