package device

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeRoutes routes every destination by one interface the test sets.
type fakeRoutes struct {
	mu      sync.Mutex
	oif     int
	err     error
	lookups int
	ch      chan<- struct{}
	ready   chan struct{}
}

func (f *fakeRoutes) Subscribe(ch chan<- struct{}, done <-chan struct{}) error {
	f.ch = ch
	close(f.ready)
	return nil
}

func (f *fakeRoutes) Lookups() (func(netip.Addr, netip.Addr, uint32) (int, error), func()) {
	return func(netip.Addr, netip.Addr, uint32) (int, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.lookups++
		return f.oif, f.err
	}, func() {}
}

// change sets the route and tells the device, then waits for its lookup.
func (f *fakeRoutes) change(t *testing.T, oif int, err error) {
	t.Helper()
	f.mu.Lock()
	f.oif, f.err = oif, err
	before := f.lookups
	f.mu.Unlock()
	f.ch <- struct{}{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		n := f.lookups
		f.mu.Unlock()
		if n > before {
			time.Sleep(20 * time.Millisecond) // the clear follows the lookup
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the device looked no route up after a change")
		}
	}
}

// TestRouteChangeClearsStaleSource: when a route change sends a peer's
// endpoint out of another interface than the one its sticky local address
// was learned on, the address is forgotten (the kernel picks the next
// one); while the route stays on that interface, it is kept.
func TestRouteChangeClearsStaleSource(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	fr := &fakeRoutes{ready: make(chan struct{})}
	a := newTestNodeOpts(t, clock, 1, Options{Workers: 2, Routes: fr})
	b := newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("learn a source")))
	<-fr.ready
	a.dev.peersMu.RLock()
	p := a.dev.peers[b.pub]
	a.dev.peersMu.RUnlock()
	ep := p.endpointCopy()
	if !ep.Src.IsValid() || ep.Ifindex == 0 {
		t.Fatalf("no sticky source learned: %+v", ep)
	}

	fr.change(t, int(ep.Ifindex), nil)
	if got := p.endpointCopy(); got != ep {
		t.Fatalf("route unchanged, endpoint changed: %+v, was %+v", got, ep)
	}
	fr.change(t, int(ep.Ifindex)+100, nil)
	if got := p.endpointCopy(); got.Src.IsValid() || got.Ifindex != 0 || got.Dst != ep.Dst {
		t.Fatalf("route moved, endpoint %+v (was %+v): want the source cleared", got, ep)
	}
	// Traffic goes on. Packets that keep arriving at the old address do
	// not teach it again while the route leaves by another interface (a
	// laptop's LAN address sent out of a new uplink made its server roam
	// to that private address); once the route is back, they do.
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("after")))
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("back")))
	if got := p.endpointCopy(); got.Src.IsValid() {
		t.Fatalf("the barred source was learned again: %+v", got)
	}
	fr.change(t, int(ep.Ifindex), nil)
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("route back")))
	if got := p.endpointCopy(); got != ep {
		t.Fatalf("source not learned again after the route came back: %+v, want %+v", got, ep)
	}
	// No route at all: the kernel is left to choose as well.
	fr.change(t, 0, unix.ENETUNREACH)
	if got := p.endpointCopy(); got.Src.IsValid() {
		t.Fatalf("no route, endpoint %+v: want the source cleared", got)
	}
}

// TestHostRoutesSurvivesOverflow: the host's route notices keep coming
// after a burst of route changes larger than the socket holds (ENOBUFS),
// and the burst itself is noticed. Before, the subscription ended at the
// first receive error and the device stopped following routes for good.
func TestHostRoutesSurvivesOverflow(t *testing.T) {
	inNewNetns(t, func() {
		ns := fmt.Sprintf("wgddev-%d", os.Getpid())
		ch := make(chan struct{}, 1)
		done := make(chan struct{})
		defer close(done)
		// A small socket buffer, so that the burst overflows it.
		if err := (hostRoutes{rcvbuf: 4096}).Subscribe(ch, done); err != nil {
			t.Fatal(err)
		}
		ipBatch := func(verb string, n int) {
			t.Helper()
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, "route %s 198.19.%d.%d/32 dev lo\n", verb, i/256, i%256)
			}
			cmd := exec.Command("ip", "-n", ns, "-batch", "-")
			cmd.Stdin = strings.NewReader(b.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ip -batch: %v\n%s", err, out)
			}
		}
		waitNotice := func(what string) {
			t.Helper()
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Fatalf("no route notice after %s", what)
			}
		}
		ipBatch("add", 20000) // far more than 1 MiB of notices
		waitNotice("a burst of 20000 route adds")
		time.Sleep(100 * time.Millisecond)
		for len(ch) > 0 {
			<-ch
		}
		ipBatch("del", 1)
		waitNotice("one route change after the burst")
	})
}
