package conn

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openT(t testing.TB) *Bind {
	t.Helper()
	b, err := Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func hasV6(b *Bind) bool { return len(b.Fds()) == 2 }

func (b *Bind) fdOf(fam int) int { return b.fdFor(fam) }

func newMsgs(n, size int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i].Buf = make([]byte, size)
	}
	return msgs
}

// readAll reads until want datagrams arrived on fd or 2 s passed.
func readAll(t testing.TB, b *Bind, fd, want int) []Message {
	t.Helper()
	var got []Message
	msgs := newMsgs(MaxBatch, 2048)
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
		n, err := b.Read(fd, msgs)
		if err != nil && !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("Read: %v", err)
		}
		for i := 0; i < n; i++ {
			m := msgs[i]
			m.Buf = append([]byte(nil), m.Buf[:m.N]...)
			got = append(got, m)
		}
	}
	if len(got) != want {
		t.Fatalf("received %d datagrams, want %d", len(got), want)
	}
	return got
}

func TestOpenSamePortBothFamilies(t *testing.T) {
	b := openT(t)
	if b.Port() == 0 {
		t.Fatal("port 0")
	}
	for _, fd := range b.Fds() {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			t.Fatal(err)
		}
		var port int
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			port = a.Port
		case *unix.SockaddrInet6:
			port = a.Port
		}
		if port != int(b.Port()) {
			t.Errorf("fd %d on port %d, bind says %d", fd, port, b.Port())
		}
		if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
			t.Errorf("fd %d blocking", fd)
		}
	}
	if !hasV6(b) {
		t.Log("no IPv6 on this host: v4 only")
	}
}

func TestOpenPortInUse(t *testing.T) {
	a := openT(t)
	_, err := Open(a.Port(), 0)
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("Open on a taken port: %v", err)
	}
}

func TestBatchBothWays(t *testing.T) {
	for _, fam := range []struct {
		name string
		af   int
		lo   string
	}{{"v4", unix.AF_INET, "127.0.0.1"}, {"v6", unix.AF_INET6, "::1"}} {
		t.Run(fam.name, func(t *testing.T) {
			a, b := openT(t), openT(t)
			if fam.af == unix.AF_INET6 && !hasV6(a) {
				t.Skip("no IPv6 on this host")
			}
			lo := netip.MustParseAddr(fam.lo)
			out := make([]Message, 64)
			for i := range out {
				out[i] = Message{Buf: []byte(fmt.Sprintf("a->b %d", i)), Ep: Endpoint{Dst: netip.AddrPortFrom(lo, b.Port())}}
			}
			if n, err := a.Write(out); n != 64 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			got := readAll(t, b, b.fdOf(fam.af), 64)
			for i, m := range got {
				if string(m.Buf) != fmt.Sprintf("a->b %d", i) {
					t.Fatalf("datagram %d = %q", i, m.Buf)
				}
				if m.Ep.Dst != netip.AddrPortFrom(lo, a.Port()) || m.Ep.Src != lo || m.Ep.Ifindex == 0 {
					t.Fatalf("datagram %d endpoint %+v", i, m.Ep)
				}
			}
			// Reply to the endpoints as received: sticky source on.
			for i := range got {
				got[i].Buf = []byte(fmt.Sprintf("b->a %d", i))
			}
			if n, err := b.Write(got); n != 64 || err != nil {
				t.Fatalf("reply Write = %d, %v", n, err)
			}
			back := readAll(t, a, a.fdOf(fam.af), 64)
			for i, m := range back {
				if string(m.Buf) != fmt.Sprintf("b->a %d", i) || m.Ep.Src != lo {
					t.Fatalf("reply %d = %q from %+v", i, m.Buf, m.Ep)
				}
				if got[i].Ep.Src != lo {
					t.Fatalf("valid sticky source was cleared: %+v", got[i].Ep)
				}
			}
		})
	}
}

func TestMixedFamiliesOneWrite(t *testing.T) {
	a, b := openT(t), openT(t)
	if !hasV6(a) {
		t.Skip("no IPv6 on this host")
	}
	var out []Message
	for i := 0; i < 10; i++ {
		lo := "127.0.0.1"
		if i%3 == 0 {
			lo = "::1"
		}
		out = append(out, Message{Buf: []byte{byte(i)}, Ep: Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr(lo), b.Port())}})
	}
	if n, err := a.Write(out); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	readAll(t, b, b.fdOf(unix.AF_INET), 6)
	readAll(t, b, b.fdOf(unix.AF_INET6), 4)
}

func TestStickySourceGoneIsCleared(t *testing.T) {
	for _, c := range []struct{ dst, src string }{
		{"127.0.0.1", "198.18.250.1"},
		{"::1", "fd00::250:1"},
	} {
		t.Run(c.dst, func(t *testing.T) {
			a, b := openT(t), openT(t)
			dst := netip.MustParseAddr(c.dst)
			if dst.Is6() && !hasV6(a) {
				t.Skip("no IPv6 on this host")
			}
			ep := Endpoint{Dst: netip.AddrPortFrom(dst, b.Port()), Src: netip.MustParseAddr(c.src), Ifindex: 1}
			msgs := []Message{{Buf: []byte("batch"), Ep: ep}, {Buf: []byte("batch2"), Ep: ep}}
			if n, err := a.Write(msgs); n != 2 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if msgs[0].Ep.Src.IsValid() || msgs[1].Ep.Src.IsValid() {
				t.Fatalf("stale source kept: %+v", msgs[0].Ep)
			}
			if err := a.Send([]byte("single"), &ep); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if ep.Src.IsValid() {
				t.Fatalf("Send kept stale source %v", ep.Src)
			}
			got := readAll(t, b, b.fdOf(family(ep.Dst)), 3)
			if string(got[2].Buf) != "single" || got[0].Ep.Dst.Addr() != dst {
				t.Fatalf("got %q from %v", got[2].Buf, got[0].Ep.Dst)
			}
		})
	}
}

func TestWriteDropsBadEndpoint(t *testing.T) {
	a, b := openT(t), openT(t)
	good := Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.Port())}
	msgs := []Message{{Buf: []byte("1"), Ep: good}, {Buf: []byte("x")}, {Buf: []byte("2"), Ep: good}}
	n, err := a.Write(msgs)
	if n != 3 || !errors.Is(err, ErrBadEndpoint) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if msgs[0].N != 0 || msgs[1].N != -1 || msgs[2].N != 0 {
		t.Fatalf("N = %d %d %d; want the dropped one marked -1", msgs[0].N, msgs[1].N, msgs[2].N)
	}
	readAll(t, b, b.fdOf(unix.AF_INET), 2)
}

func TestClosed(t *testing.T) {
	a := openT(t)
	fd := a.Fds()[0]
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Read(fd, newMsgs(1, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	ep := Endpoint{Dst: netip.MustParseAddrPort("127.0.0.1:9")}
	if err := a.Send([]byte("x"), &ep); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if n, err := a.Write([]Message{{Buf: []byte("x"), Ep: ep}}); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %d %v", n, err)
	}
}

func TestReadWriteDoNotAllocate(t *testing.T) {
	a, b := openT(t), openT(t)
	out := make([]Message, 64)
	for i := range out {
		out[i] = Message{Buf: make([]byte, 1400), Ep: Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.Port()), Src: netip.MustParseAddr("127.0.0.1")}}
	}
	in := newMsgs(64, 2048)
	fd := b.fdOf(unix.AF_INET)
	allocs := testing.AllocsPerRun(50, func() {
		if n, err := a.Write(out); n != 64 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		for got, tries := 0, 0; got < 64 && tries < 1e6; tries++ {
			n, err := b.Read(fd, in)
			if err != nil && !errors.Is(err, ErrWouldBlock) {
				t.Fatalf("Read: %v", err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per Write+Read of 64", allocs)
	}
}
