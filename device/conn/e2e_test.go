package conn

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace, a veth pair and a qdisc")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (iproute2)", tool)
		}
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
}

// newNetns creates the network namespace name (deleted at cleanup) and
// brings its loopback up with the extra `ip link set lo` arguments.
func newNetns(t *testing.T, name string, loArgs ...string) string {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, append([]string{"ip", "-n", name, "link", "set", "lo"}, append(loArgs, "up")...)...)
	return name
}

// inNetns runs fn on a thread inside ns; sockets fn creates stay there.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Error(err)
			return
		}
		fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
}

// TestE2EWriteWouldBlock fills a small send buffer behind a slow qdisc:
// datagrams wait in a tbf queue on a veth whose only neighbour is a static
// fake entry, so the socket's send buffer stays charged until Write gets
// EAGAIN. Nothing leaves the namespace. With GSO one datagram carries 64
// messages, so the GSO case writes more of them.
func TestE2EWriteWouldBlock(t *testing.T) {
	needRoot(t)
	t.Run("plain", func(t *testing.T) { testWriteWouldBlock(t, Options{NoGSO: true}, 64) })
	t.Run("gso", func(t *testing.T) { testWriteWouldBlock(t, Options{}, 4*maxSegments) })
}

func testWriteWouldBlock(t *testing.T, opts Options, count int) {
	ns := fmt.Sprintf("wgdconn-%d-%d", os.Getpid(), count)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", "wgdc0", "type", "veth", "peer", "name", "wgdc1")
	run(t, "ip", "-n", ns, "addr", "add", "198.18.1.1/24", "dev", "wgdc0")
	run(t, "ip", "-n", ns, "link", "set", "wgdc0", "up")
	run(t, "ip", "-n", ns, "link", "set", "wgdc1", "up")
	run(t, "ip", "-n", ns, "neigh", "add", "198.18.1.9", "lladdr", "02:00:00:00:00:09", "dev", "wgdc0", "nud", "permanent")
	run(t, "tc", "-n", ns, "qdisc", "add", "dev", "wgdc0", "root", "tbf", "rate", "8kbit", "burst", "1600", "limit", "10mb")

	var a *Bind
	inNetns(t, ns, func() {
		var err error
		a, err = OpenWith(0, 0, opts)
		if err != nil {
			t.Error(err)
		}
	})
	if a == nil {
		t.FailNow()
	}
	defer a.Close()
	fd := a.fdOf(unix.AF_INET)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	msgs := make([]Message, count)
	for i := range msgs {
		msgs[i] = Message{Buf: make([]byte, 1000), Ep: Endpoint{Dst: netip.MustParseAddrPort("198.18.1.9:51820")}}
	}
	n, err := a.Write(msgs)
	if !errors.Is(err, ErrWouldBlock) || n == 0 || n >= len(msgs) {
		t.Fatalf("Write = %d, %v; want a partial count and ErrWouldBlock", n, err)
	}
	if gso, _ := a.Offloads(); gso != !opts.NoGSO {
		t.Fatalf("GSO on = %v after a partial write", gso)
	}
	t.Logf("send buffer full after %d of %d datagrams", n, len(msgs))
	ep := msgs[0].Ep
	if err := a.Send(make([]byte, 1000), &ep); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("Send on a full buffer = %v; want ErrWouldBlock", err)
	}
}

// TestE2EGSOFallbackSmallMTU sends GSO segments larger than the path MTU
// (loopback set to 1280 in a fresh namespace): the kernel refuses the GSO
// datagram with EINVAL, Write resends the messages one by one (the kernel
// fragments them) and all 64 arrive. GSO stays on for smaller datagrams:
// only datagrams of the refused size and larger leave one by one, until
// ResetGSOLimit (a TUN MTU change) or gsoRetryAfter of them later, after
// which large ones try GSO again, and keep it once the path takes them.
func TestE2EGSOFallbackSmallMTU(t *testing.T) {
	needRoot(t)
	ns := newNetns(t, fmt.Sprintf("wgdgso-%d", os.Getpid()), "mtu", "1280")
	var a, rx *Bind
	inNetns(t, ns, func() {
		var err error
		if a, err = Open(0, 0); err != nil {
			t.Error(err)
		}
		if rx, err = OpenWith(0, 0, Options{NoGRO: true}); err != nil {
			t.Error(err)
		}
	})
	if a == nil || rx == nil {
		t.FailNow()
	}
	defer a.Close()
	defer rx.Close()
	if gso, _ := a.Offloads(); !gso {
		t.Skip("kernel lacks UDP GSO")
	}
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())
	send := func(size int) (gsoDatagrams uint64) {
		t.Helper()
		out := make([]Message, 64)
		for i := range out {
			out[i] = Message{Buf: pattern(i, size), Ep: Endpoint{Dst: dst}}
		}
		before := a.Stats().GSODatagrams
		if n, err := a.Write(out); n != 64 || err != nil {
			t.Fatalf("Write of %d-byte datagrams = %d, %v", size, n, err)
		}
		for i, m := range out {
			if m.N < 0 {
				t.Fatalf("message %d of %d bytes marked dropped", i, size)
			}
		}
		for i, m := range readInto(t, rx, rx.fdOf(unix.AF_INET), 64, 64, engineBuf) {
			if len(m.Buf) != size || m.Buf[1] != out[i].Buf[1] {
				t.Fatalf("message %d: %d bytes, want %d", i, len(m.Buf), size)
			}
		}
		return a.Stats().GSODatagrams - before
	}
	send(1452) // refused with GSO, sent one by one
	if gso, _ := a.Offloads(); !gso {
		t.Fatal("GSO turned off for the socket; want it limited to smaller datagrams")
	}
	if below := a.off4.gsoBelow.Load(); below != 1452 {
		t.Fatalf("GSO size limit %d, want 1452", below)
	}
	if g := send(1452); g != 0 {
		t.Fatalf("%d GSO datagrams of 1452-byte segments after the refusal; want none", g)
	}
	if g := send(1000); g == 0 {
		t.Fatal("1000-byte datagrams (below the path MTU) no longer use GSO")
	}
	a.ResetGSOLimit()
	if below := a.off4.gsoBelow.Load(); below != 0 {
		t.Fatalf("GSO size limit %d after ResetGSOLimit", below)
	}
	send(1452) // tries GSO again, is refused again
	if below := a.off4.gsoBelow.Load(); below != 1452 {
		t.Fatalf("GSO size limit %d after a new refusal, want 1452", below)
	}
	// The path grows back (the underlay's MTU raised again): after
	// gsoRetryAfter datagrams one by one, GSO is tried and kept. It used
	// to stay off for them until the TUN's MTU changed.
	run(t, "ip", "-n", ns, "link", "set", "lo", "mtu", "65536")
	for range gsoRetryAfter / 64 {
		send(1452)
	}
	if g := send(1452); g == 0 {
		t.Fatalf("no GSO datagrams of 1452-byte segments after the path grew (limit %d)", a.off4.gsoBelow.Load())
	}
	if below := a.off4.gsoBelow.Load(); below != 0 {
		t.Fatalf("GSO size limit %d after the path grew, want none", below)
	}
}

// TestE2EWriteMarksRefused: a datagram the kernel refuses (no route to it
// in a namespace with only loopback) is dropped, counted in n and marked
// N = -1, and the datagrams around it go out.
func TestE2EWriteMarksRefused(t *testing.T) {
	needRoot(t)
	ns := newNetns(t, fmt.Sprintf("wgdref-%d", os.Getpid()))
	var a, rx *Bind
	inNetns(t, ns, func() {
		var err error
		if a, err = Open(0, 0); err != nil {
			t.Error(err)
		}
		if rx, err = Open(0, 0); err != nil {
			t.Error(err)
		}
	})
	if a == nil || rx == nil {
		t.FailNow()
	}
	defer a.Close()
	defer rx.Close()
	good := Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())}
	unroutable := Endpoint{Dst: netip.MustParseAddrPort("198.18.99.1:51820")}
	msgs := []Message{{Buf: []byte("1"), Ep: good}, {Buf: []byte("x"), Ep: unroutable}, {Buf: []byte("2"), Ep: good}}
	n, err := a.Write(msgs)
	if n != 3 || !errors.Is(err, unix.ENETUNREACH) {
		t.Fatalf("Write = %d, %v; want 3 and ENETUNREACH", n, err)
	}
	if msgs[0].N != 0 || msgs[1].N != -1 || msgs[2].N != 0 {
		t.Fatalf("N = %d %d %d; want the refused one marked -1", msgs[0].N, msgs[1].N, msgs[2].N)
	}
	readAll(t, rx, rx.fdOf(unix.AF_INET), 2)
}
