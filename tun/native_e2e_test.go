package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNetns creates a network namespace for one test and deletes it in
// t.Cleanup. Names are unique per process and test.
func testNetns(t *testing.T, tag string) string {
	t.Helper()
	name := fmt.Sprintf("wgdtun-%s-%d", tag, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

func ipIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	full := append([]string{"-n", ns}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v: %s", full, err, out)
	}
	return string(out)
}

// enterNetns locks the calling goroutine's thread into ns until cleanup.
func enterNetns(t *testing.T, ns string) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer orig.Close()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	})
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and TUN devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

// udp4Packet builds an IPv4/UDP packet with valid checksums.
func udp4Packet(src, dst netip.AddrPort, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = unix.IPPROTO_UDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], ^sum16(0, p[:20]))
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	pseudo := uint32(sum16(0, p[12:20]))
	pseudo += uint32(unix.IPPROTO_UDP) + uint32(len(u))
	binary.BigEndian.PutUint16(u[6:], ^sum16(pseudo, u))
	return p
}

// sum16 folds the internet checksum of b into acc.
func sum16(acc uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// readUntil polls dev until match accepts a packet or the deadline passes.
func readUntil(t *testing.T, dev Device, match func([]byte) bool) []byte {
	t.Helper()
	bufs, sizes := makeBufs(8, 2000), make([]int, 8)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(dev.Fd()), Events: unix.POLLIN}}
		unix.Poll(pfd, 100)
		n, err := dev.Read(bufs, sizes, 0)
		if err != nil && !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("Read: %v", err)
		}
		for i := 0; i < n; i++ {
			if p := bufs[i][:sizes[i]]; match(p) {
				return p
			}
		}
	}
	t.Fatal("no matching packet read from the TUN")
	return nil
}

func waitEvent(t *testing.T, ch <-chan Event, want Event) {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("events closed while waiting for %v", want)
			}
			if ev == want {
				return
			}
		case <-timeout:
			t.Fatalf("no event %v %d", want.Kind, want.MTU)
		}
	}
}

func TestE2ENativeTUN(t *testing.T) {
	needRoot(t)
	goroutines := runtime.NumGoroutine()
	ns := testNetns(t, "a")
	enterNetns(t, ns)
	dev, err := Create("wgt%d", 1420)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	name := dev.Name()
	if m, err := dev.MTU(); m != 1420 || err != nil {
		t.Fatalf("MTU = %d, %v", m, err)
	}
	ipIn(t, ns, "addr", "add", "198.18.0.1/24", "dev", name)
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, dev.Events(), Event{Kind: EventUp})
	// As a kernel WireGuard link, the TUN gets no IPv6 link-local address
	// of its own when it comes up (addrgenmode none).
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Log("no IPv6 in this kernel: no address generation to check")
	} else if out := ipIn(t, ns, "-d", "link", "show", name); !strings.Contains(out, "addrgenmode none") {
		t.Errorf("IPv6 address generation is on:\n%s", out)
	}
	if out := ipIn(t, ns, "-6", "addr", "show", "dev", name); strings.Contains(out, "fe80") {
		t.Errorf("the TUN got a link-local address:\n%s", out)
	}

	// Outbound: a UDP datagram routed into the TUN comes out as raw IPv4.
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	if err := unix.Bind(sock, &unix.SockaddrInet4{Addr: [4]byte{198, 18, 0, 1}, Port: 40000}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendto(sock, []byte("hello tun"), 0, &unix.SockaddrInet4{Addr: [4]byte{198, 18, 0, 2}, Port: 9999}); err != nil {
		t.Fatal(err)
	}
	p := readUntil(t, dev, func(p []byte) bool {
		return len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_UDP && p[19] == 2 && binary.BigEndian.Uint16(p[22:]) == 9999
	})
	if string(p[28:]) != "hello tun" {
		t.Fatalf("payload %q", p[28:])
	}

	// Inbound: a UDP packet written into the TUN reaches the socket.
	in := udp4Packet(netip.MustParseAddrPort("198.18.0.2:9999"), netip.MustParseAddrPort("198.18.0.1:40000"), []byte("hello host"))
	if n, err := dev.Write([][]byte{in}, 0); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3})
	rb := make([]byte, 100)
	m, from, err := unix.Recvfrom(sock, rb, 0)
	if err != nil || string(rb[:m]) != "hello host" || from.(*unix.SockaddrInet4).Port != 9999 {
		t.Fatalf("recv %q from %v: %v", rb[:m], from, err)
	}

	if err := dev.SetMTU(1280); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, dev.Events(), Event{Kind: EventMTU, MTU: 1280})
	if m, err := dev.MTU(); m != 1280 || err != nil {
		t.Fatalf("MTU = %d, %v", m, err)
	}

	ipIn(t, ns, "link", "del", name)
	waitEvent(t, dev.Events(), Event{Kind: EventDeleted})
	bufs, sizes := makeBufs(1, 2000), make([]int, 1)
	if _, err := dev.Read(bufs, sizes, 0); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Read after delete = %v; want ErrDeleted", err)
	}
	if _, ok := <-dev.Events(); ok {
		t.Fatal("events still open after EventDeleted")
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	checkGoroutines(t, goroutines)
}

// TestE2ENativeMoveNetns moves the link to a second namespace: the fd keeps
// working, MTU follows the link, and events keep coming from the new place.
func TestE2ENativeMoveNetns(t *testing.T) {
	needRoot(t)
	goroutines := runtime.NumGoroutine()
	ns1, ns2 := testNetns(t, "m1"), testNetns(t, "m2")
	enterNetns(t, ns1)
	dev, err := Create("wgm%d", 1420)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	name := dev.Name()
	ipIn(t, ns1, "link", "set", name, "netns", ns2)
	if m, err := dev.MTU(); m != 1420 || err != nil {
		t.Fatalf("MTU after move = %d, %v", m, err)
	}
	ipIn(t, ns2, "link", "set", name, "mtu", "1300")
	waitEvent(t, dev.Events(), Event{Kind: EventMTU, MTU: 1300})
	if m, err := dev.MTU(); m != 1300 || err != nil {
		t.Fatalf("MTU = %d, %v", m, err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, dev.Events(), Event{Kind: EventUp})
	ipIn(t, ns2, "link", "del", name)
	waitEvent(t, dev.Events(), Event{Kind: EventDeleted})
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	checkGoroutines(t, goroutines)
}

// TestE2ENativeCloseStopsWatcher closes a live device and checks that the
// events channel closes and no goroutine is left behind.
func TestE2ENativeCloseStopsWatcher(t *testing.T) {
	needRoot(t)
	goroutines := runtime.NumGoroutine()
	ns := testNetns(t, "c")
	enterNetns(t, ns)
	dev, err := Create("wgc%d", 1420)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	for range dev.Events() {
	}
	if _, err := dev.MTU(); !errors.Is(err, ErrClosed) {
		t.Fatalf("MTU after Close = %v", err)
	}
	checkGoroutines(t, goroutines)
}

func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutine leak: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
