package tun

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func makeBufs(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

func TestSocketpairRoundTrip(t *testing.T) {
	dev, peer, err := NewSocketpair("fake0", 1420)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer dev.Close()

	const offset = 16
	bufs := makeBufs(100, offset+1500)
	sizes := make([]int, len(bufs))
	if n, err := dev.Read(bufs, sizes, offset); n != 0 || !errors.Is(err, ErrWouldBlock) || !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("empty Read = %d, %v; want 0, ErrWouldBlock", n, err)
	}
	// Test -> device: 100 packets arrive in batches of at most BatchSize.
	for i := 0; i < 100; i++ {
		if _, err := peer.Write(bytes.Repeat([]byte{byte(i)}, 20+i)); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < 100 {
		n, err := dev.Read(bufs, sizes, offset)
		if err != nil {
			t.Fatalf("Read after %d: %v", got, err)
		}
		if n > dev.BatchSize() {
			t.Fatalf("Read returned %d > BatchSize %d", n, dev.BatchSize())
		}
		for i := 0; i < n; i++ {
			want := bytes.Repeat([]byte{byte(got)}, 20+got)
			if !bytes.Equal(bufs[i][offset:offset+sizes[i]], want) {
				t.Fatalf("packet %d: got %d bytes %x", got, sizes[i], bufs[i][offset:offset+4])
			}
			got++
		}
	}
	// Device -> test: one Write of a batch, each packet one datagram.
	out := makeBufs(10, offset+100)
	for i := range out {
		out[i] = out[i][:offset+10+i]
		out[i][offset] = byte(i)
	}
	if n, err := dev.Write(out, offset); n != len(out) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	rb := make([]byte, 200)
	for i := range out {
		m, err := peer.Read(rb)
		if err != nil || m != 10+i || rb[0] != byte(i) {
			t.Fatalf("peer read %d: %d bytes, %v", i, m, err)
		}
	}
}

func TestSocketpairWriteWouldBlock(t *testing.T) {
	dev, peer, err := NewSocketpair("fake0", 1420)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	defer dev.Close()
	bufs := makeBufs(64, 1400)
	total := 0
	// An AF_UNIX datagram queue holds a bounded number of datagrams; the
	// loop is bounded too in case the kernel ever queues without limit.
	for i := 0; i < 10000; i++ {
		n, err := dev.Write(bufs, 0)
		total += n
		if err != nil {
			if !errors.Is(err, ErrWouldBlock) || n >= len(bufs) {
				t.Fatalf("Write = %d, %v; want partial count and ErrWouldBlock", n, err)
			}
			return
		}
	}
	t.Fatalf("wrote %d packets without ErrWouldBlock", total)
}

func TestSocketpairMTUAndClose(t *testing.T) {
	dev, peer, err := NewSocketpair("fake0", 1420)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := dev.SetMTU(20); !errors.Is(err, ErrBadMTU) {
		t.Fatalf("SetMTU(20) = %v", err)
	}
	if err := dev.SetMTU(1280); err != nil {
		t.Fatal(err)
	}
	if m, err := dev.MTU(); m != 1280 || err != nil {
		t.Fatalf("MTU = %d, %v", m, err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := dev.MTU(); !errors.Is(err, ErrClosed) {
		t.Fatalf("MTU after Close = %v", err)
	}
}

func TestEventKindString(t *testing.T) {
	for k, want := range map[EventKind]string{EventUp: "up", EventDown: "down", EventMTU: "mtu", EventDeleted: "deleted", 9: "EventKind(9)"} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
	}
}
