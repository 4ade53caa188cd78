package device

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNewNetns runs fn on a thread moved into a network namespace the test
// creates (loopback only) and deletes at cleanup: sockets fn opens stay in
// it. It skips without root.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	ns := fmt.Sprintf("wgddev-%d", os.Getpid())
	for _, args := range [][]string{{"netns", "add", ns}, {"-n", ns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			panic(err) // this thread must not go back to the pool in the test namespace
		}
	}()
	fn()
}

// TestTxBytesOnlySent: datagrams the kernel refuses to send (no route to
// the peer's endpoint) add nothing to the peer's transmitted bytes, as the
// kernel module counts; they are counted as send errors. Both devices live
// in a namespace with only loopback, so the unroutable endpoint is refused
// at once and nothing leaves the machine.
func TestTxBytesOnlySent(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	var a, b *testNode
	inNewNetns(t, func() {
		a, b = newTestNodeWorkers(t, clock, 1, -1), newTestNodeWorkers(t, clock, 2, -1)
	})
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("session up")))
	txBytes := func() uint64 {
		var tx uint64
		a.dev.Visit(func(Info) {}, func(p *PeerInfo) { tx = p.TxBytes })
		return tx
	}
	before, errs := txBytes(), a.dev.Counters().SendErrors
	unroutable := netip.MustParseAddrPort("198.18.99.1:51820")
	if err := a.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: b.pub, UpdateOnly: true, Endpoint: &unroutable}}}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		a.write(t, udp4(a.addr, b.addr, []byte{byte(i)}))
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.dev.Counters().SendErrors < errs+n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := a.dev.Counters().SendErrors - errs; got < n {
		t.Fatalf("%d send errors, want %d", got, n)
	}
	if after := txBytes(); after != before {
		t.Fatalf("tx bytes %d -> %d for datagrams the kernel refused", before, after)
	}
}
