package tun

import (
	"errors"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadPacketsDropsCutPackets: without offloads a packet larger than
// its buffer can only be read cut short; it is dropped with
// ErrPacketTooBig instead of being sent on so (or, at 1441-1456 bytes on
// MTU 1420, counted as "no key" for want of room for the tag), while one
// that fills its buffer exactly is kept. Packets after it are still read.
func TestReadPacketsDropsCutPackets(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	send := func(n int) {
		if _, err := unix.Write(fds[1], make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	send(100)
	send(10)
	bufs, sizes := makeBufs(4, 16+50), make([]int, 4)
	var drops atomic.Uint64
	n, err := readPackets(fds[0], bufs, sizes, 16, &drops)
	if err != nil || n != 1 || sizes[0] != 10 {
		t.Fatalf("readPackets = %d (%v), %v; want the 10-byte packet only", n, sizes[:n], err)
	}
	send(51)
	if n, err := readPackets(fds[0], bufs, sizes, 16, &drops); n != 0 || !errors.Is(err, ErrPacketTooBig) {
		t.Fatalf("readPackets of one cut packet = %d, %v; want ErrPacketTooBig", n, err)
	}
	// One that fills its buffer exactly is whole.
	send(50)
	if n, err := readPackets(fds[0], bufs, sizes, 16, &drops); n != 1 || err != nil || sizes[0] != 50 {
		t.Fatalf("readPackets of a packet filling its buffer = %d (%v), %v", n, sizes[:n], err)
	}
	pkt := make([]byte, 20)
	if a := testing.AllocsPerRun(100, func() {
		unix.Write(fds[1], pkt)
		readPackets(fds[0], bufs, sizes, 16, &drops)
	}); a != 0 {
		t.Errorf("readPackets allocates: %v per call", a)
	}
	if n, err := readPackets(fds[0], bufs, sizes, 16, &drops); n != 0 || !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("readPackets of nothing = %d, %v", n, err)
	}
	if d := drops.Load(); d != 2 {
		t.Errorf("%d drops counted, want 2 (one beside a good packet, one alone)", d)
	}
}
