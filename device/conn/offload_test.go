package conn

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// engineBuf is the receive buffer size the device engine passes to Read.
const engineBuf = 1<<16 + 64

func openOpts(t testing.TB, opts Options) *Bind {
	t.Helper()
	b, err := OpenWith(0, 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// pattern fills a message body that names its index, so order and
// boundaries are checked byte for byte.
func pattern(i, size int) []byte {
	b := make([]byte, size)
	for k := range b {
		b[k] = byte(i*7 + k)
	}
	return b
}

// readInto reads want datagrams from fd with msgs of the given count and
// buffer size, copying each out, bounded to 2 s.
func readInto(t testing.TB, b *Bind, fd, want, count, size int) []Message {
	t.Helper()
	var got []Message
	msgs := newMsgs(count, size)
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 20)
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

func loopbacks(t *testing.T, a *Bind) []netip.Addr {
	los := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	if hasV6(a) {
		los = append(los, netip.MustParseAddr("::1"))
	} else {
		t.Log("no IPv6 on this host: v4 only")
	}
	return los
}

func TestOffloadsProbed(t *testing.T) {
	a := openT(t)
	gso, gro := a.Offloads()
	t.Logf("kernel offloads: gso=%v gro=%v", gso, gro)
	if !gso || !gro {
		t.Skip("kernel lacks UDP GSO or GRO")
	}
	b := openOpts(t, Options{NoGSO: true, NoGRO: true})
	if gso, gro := b.Offloads(); gso || gro {
		t.Fatalf("forced off but Offloads = %v, %v", gso, gro)
	}
}

func needOffloads(t *testing.T, b *Bind) {
	t.Helper()
	if gso, gro := b.Offloads(); !gso || !gro {
		t.Skip("kernel lacks UDP GSO or GRO")
	}
}

// TestGSOToPlainReceiver: 64 equal messages in one Write leave as GSO
// datagrams (45 + 19 segments of 1452 bytes) and arrive as 64 datagrams at
// a receiver without GRO.
func TestGSOToPlainReceiver(t *testing.T) {
	a := openT(t)
	needOffloads(t, a)
	for _, lo := range loopbacks(t, a) {
		t.Run(lo.String(), func(t *testing.T) {
			rx := openOpts(t, Options{NoGRO: true})
			ep := Endpoint{Dst: netip.AddrPortFrom(lo, rx.Port())}
			out := make([]Message, 64)
			for i := range out {
				out[i] = Message{Buf: pattern(i, 1452), Ep: ep}
			}
			if n, err := a.Write(out); n != 64 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if a.tx.segs[0] != 45 || a.tx.segs[1] != 19 {
				t.Fatalf("GSO groups %d + %d, want 45 + 19", a.tx.segs[0], a.tx.segs[1])
			}
			got := readInto(t, rx, rx.fdOf(family(ep.Dst)), 64, 64, 2048)
			for i, m := range got {
				if !bytes.Equal(m.Buf, out[i].Buf) || m.Ep.Dst != netip.AddrPortFrom(lo, a.Port()) {
					t.Fatalf("datagram %d: %d bytes from %v", i, len(m.Buf), m.Ep)
				}
			}
		})
	}
}

// TestKernelCoalesces checks the premise of the GRO tests: on loopback a
// GSO datagram reaches a UDP_GRO socket whole, with the segment size in a
// cmsg that parseControl finds.
func TestKernelCoalesces(t *testing.T) {
	a, rx := openT(t), openT(t)
	needOffloads(t, a)
	out := make([]Message, 10)
	for i := range out {
		out[i] = Message{Buf: pattern(i, 1000), Ep: Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())}}
	}
	if n, err := a.Write(out); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	fd := rx.fdOf(unix.AF_INET)
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 2000)
	buf, oob := make([]byte, 1<<16), make([]byte, ctrlSize)
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, gro := parseControl(oob[:oobn]); n != 10000 || gro != 1000 {
		t.Fatalf("got %d bytes with GRO size %d, want 10000 in 1000-byte segments", n, gro)
	}
}

// TestGROSplit: a GSO burst received with GRO on comes back as 64 messages
// with the right sizes, bytes and endpoint, through engine-sized buffers
// (first segment in place) and through small ones (via the carry).
func TestGROSplit(t *testing.T) {
	a := openT(t)
	needOffloads(t, a)
	for _, lo := range loopbacks(t, a) {
		for _, size := range []int{engineBuf, 2048} {
			t.Run(lo.String(), func(t *testing.T) {
				rx := openT(t)
				ep := Endpoint{Dst: netip.AddrPortFrom(lo, rx.Port())}
				out := make([]Message, 64)
				for i := range out {
					out[i] = Message{Buf: pattern(i, 1452), Ep: ep}
				}
				out[63].Buf = out[63].Buf[:100] // a shorter last segment
				if n, err := a.Write(out); n != 64 || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				got := readInto(t, rx, rx.fdOf(family(ep.Dst)), 64, 64, size)
				for i, m := range got {
					if !bytes.Equal(m.Buf, out[i].Buf) {
						t.Fatalf("message %d: %d bytes, want %d", i, len(m.Buf), len(out[i].Buf))
					}
					if m.Ep.Dst != netip.AddrPortFrom(lo, a.Port()) || m.Ep.Src != lo || m.Ep.Ifindex == 0 {
						t.Fatalf("message %d endpoint %+v", i, m.Ep)
					}
				}
			})
		}
	}
}

// TestGROCarryOver reads a 45-segment datagram with fewer messages than
// segments: the rest must come back, in order, from the following Reads.
func TestGROCarryOver(t *testing.T) {
	a, rx := openT(t), openT(t)
	needOffloads(t, a)
	ep := Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())}
	out := make([]Message, 64)
	for i := range out {
		out[i] = Message{Buf: pattern(i, 1452), Ep: ep}
	}
	if n, err := a.Write(out); n != 64 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	fd := rx.fdOf(unix.AF_INET)
	for _, size := range []int{engineBuf, 1500} {
		want, first := 35, 0 // whole Reads of 7
		if size == 1500 {
			want, first = 29, 35
		}
		got := readInto(t, rx, fd, want, 7, size)
		for i, m := range got {
			if k := first + i; !bytes.Equal(m.Buf, out[k].Buf) {
				t.Fatalf("buffers %d: message %d wrong (%d bytes)", size, k, len(m.Buf))
			}
		}
	}
	// A segment bigger than the caller's buffer is reported as N == 0,
	// like any datagram too big for its buffer, and the rest still come.
	if n, err := a.Write(out[:3]); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	for i, m := range readInto(t, rx, fd, 3, 2, 1000) {
		if len(m.Buf) != 0 {
			t.Fatalf("oversized segment %d reported with %d bytes", i, len(m.Buf))
		}
	}
}

// TestGSOMixed: sizes and endpoints change within one Write; groups break
// where they must and every datagram arrives intact at its receiver.
func TestGSOMixed(t *testing.T) {
	a, r1, r2 := openT(t), openT(t), openOpts(t, Options{NoGRO: true})
	needOffloads(t, a)
	lo := netip.MustParseAddr("127.0.0.1")
	e1 := Endpoint{Dst: netip.AddrPortFrom(lo, r1.Port())}
	e2 := Endpoint{Dst: netip.AddrPortFrom(lo, r2.Port())}
	e1s := Endpoint{Dst: e1.Dst, Src: lo}
	plan := []struct {
		n, size int
		ep      Endpoint
	}{{10, 1000, e1}, {1, 500, e1}, {5, 1000, e1}, {1, 1200, e1}, {3, 800, e2}, {4, 800, e1s}, {1, 0, e2}, {2, 300, e2}}
	var out []Message
	for _, p := range plan {
		for k := 0; k < p.n; k++ {
			out = append(out, Message{Buf: pattern(len(out), p.size), Ep: p.ep})
		}
	}
	if n, err := a.Write(out); n != len(out) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want := []int{11, 5, 1, 3, 4, 1, 2}
	for j, w := range want {
		if a.tx.segs[j] != w {
			t.Fatalf("group %d carries %d messages, want %d (%v)", j, a.tx.segs[j], w, a.tx.segs[:len(want)])
		}
	}
	var to1, to2 []Message
	for _, m := range out {
		if m.Ep.Dst == e1.Dst {
			to1 = append(to1, m)
		} else {
			to2 = append(to2, m)
		}
	}
	check := func(rx *Bind, sent []Message) {
		got := readInto(t, rx, rx.fdOf(unix.AF_INET), len(sent), 16, engineBuf)
		for i := range got {
			if !bytes.Equal(got[i].Buf, sent[i].Buf) {
				t.Fatalf("port %d message %d: %d bytes, want %d", rx.Port(), i, len(got[i].Buf), len(sent[i].Buf))
			}
		}
	}
	check(r1, to1)
	check(r2, to2)
}

// TestGSOForcedOff: with GSO off every message is its own datagram and
// the receiver still gets everything.
func TestGSOForcedOff(t *testing.T) {
	a, rx := openOpts(t, Options{NoGSO: true}), openT(t)
	ep := Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())}
	out := make([]Message, 64)
	for i := range out {
		out[i] = Message{Buf: pattern(i, 1452), Ep: ep}
	}
	if n, err := a.Write(out); n != 64 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if a.tx.consumed(64) != 64 {
		t.Fatalf("GSO used while off: %v", a.tx.segs[:4])
	}
	for i, m := range readInto(t, rx, rx.fdOf(unix.AF_INET), 64, 64, engineBuf) {
		if !bytes.Equal(m.Buf, out[i].Buf) {
			t.Fatalf("message %d wrong", i)
		}
	}
}

func TestReadWriteDoNotAllocateOffloads(t *testing.T) {
	a, b := openT(t), openT(t)
	out := make([]Message, 64)
	for i := range out {
		out[i] = Message{Buf: make([]byte, 1452), Ep: Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.Port())}}
	}
	in := newMsgs(64, engineBuf)
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

func TestCoalescableLimits(t *testing.T) {
	ep4 := Endpoint{Dst: netip.MustParseAddrPort("198.18.0.1:1")}
	ep6 := Endpoint{Dst: netip.MustParseAddrPort("[fd00::1]:1")}
	mk := func(n, size int, ep Endpoint) []Message {
		m := make([]Message, n)
		for i := range m {
			m[i] = Message{Buf: make([]byte, size), Ep: ep}
		}
		return m
	}
	cases := []struct {
		msgs  []Message
		limit int
		want  int
	}{
		{mk(100, 100, ep4), 128, maxSegments},
		{mk(100, 100, ep4), 10, 10},
		{mk(64, 1452, ep4), 128, maxPayload4 / 1452},
		{mk(64, 1452, ep6), 128, maxPayload6 / 1452},
		{mk(64, 0, ep4), 128, 1},
		{append(mk(3, 100, ep4), mk(3, 100, ep6)...), 128, 3},
		{append(mk(3, 100, ep4), mk(3, 101, ep4)...), 128, 3},
		{append(mk(3, 100, ep4), mk(3, 99, ep4)...), 128, 4},
	}
	for i, c := range cases {
		if got := coalescable(c.msgs, c.limit); got != c.want {
			t.Errorf("case %d: %d, want %d", i, got, c.want)
		}
	}
}

// FuzzSplit cuts a random datagram into random-size segments over a
// random number of messages of random size; what comes out of msgs and
// then the carry must be the datagram again, segment by segment.
func FuzzSplit(f *testing.F) {
	f.Add(make([]byte, 3000), uint16(1000), uint8(2), uint16(1500))
	f.Add(make([]byte, 10), uint16(0), uint8(1), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, seg uint16, count uint8, size uint16) {
		if len(data) == 0 || count == 0 {
			return
		}
		for i := range data {
			data[i] = byte(i)
		}
		msgs := newMsgs(int(count), int(size))
		msgs[0].Buf = make([]byte, len(data))
		copy(msgs[0].Buf, data)
		c := new(carry)
		ep := Endpoint{Dst: netip.MustParseAddrPort("198.18.0.1:9")}
		msgs[0].Ep = ep
		n := split(msgs, len(data), int(seg), c)
		s := int(seg)
		if s <= 0 || s >= len(data) {
			s = len(data)
		}
		off := 0
		check := func(m Message) {
			l := min(s, len(data)-off)
			if m.Ep != ep || (m.N != 0 && (m.N != l || !bytes.Equal(m.Buf[:m.N], data[off:off+l]))) {
				t.Fatalf("segment at %d: N=%d want %d", off, m.N, l)
			}
			if m.N == 0 && l <= len(m.Buf) && off > 0 {
				t.Fatalf("segment at %d dropped though it fits", off)
			}
			off += l
		}
		for i := 0; i < n; i++ {
			check(msgs[i])
		}
		for tries := 0; !c.empty() && tries < 1<<17; tries++ {
			k := c.emit(msgs)
			for i := 0; i < k; i++ {
				check(msgs[i])
			}
		}
		if off != len(data) {
			t.Fatalf("got %d of %d bytes back", off, len(data))
		}
	})
}

// TestReadCoalescedKeepsDatagramsWhole: ReadCoalesced hands a GSO burst over
// as one message with its segment size, and plain datagrams with Seg 0, in
// one call.
func TestReadCoalescedKeepsDatagramsWhole(t *testing.T) {
	a, rx := openT(t), openT(t)
	needOffloads(t, a)
	ep := Endpoint{Dst: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())}
	out := make([]Message, 10)
	for i := range out {
		out[i] = Message{Buf: pattern(i, 1000), Ep: ep}
	}
	out[9].Buf = out[9].Buf[:300]
	single := Message{Buf: pattern(99, 77), Ep: ep}
	if n, err := a.Write(out); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := a.Write([]Message{single}); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	fd := rx.fdOf(unix.AF_INET)
	msgs := make([]Message, 8)
	for i := range msgs {
		msgs[i].Buf = make([]byte, engineBuf)
	}
	var got []Message
	for deadline := time.Now().Add(2 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
		n, err := rx.ReadCoalesced(fd, msgs)
		if err != nil && !errors.Is(err, ErrWouldBlock) {
			t.Fatal(err)
		}
		for _, m := range msgs[:n] {
			got = append(got, Message{Buf: append([]byte(nil), m.Buf[:m.N]...), N: m.N, Seg: m.Seg})
		}
	}
	if len(got) != 2 {
		t.Fatalf("got %d messages, want the burst and the single datagram", len(got))
	}
	if got[0].N != 9300 || got[0].Seg != 1000 {
		t.Fatalf("burst: N=%d Seg=%d, want 9300 bytes in 1000-byte segments", got[0].N, got[0].Seg)
	}
	for i := range out {
		seg := got[0].Buf[i*1000 : min((i+1)*1000, got[0].N)]
		if !bytes.Equal(seg, out[i].Buf) {
			t.Fatalf("segment %d differs", i)
		}
	}
	if got[1].Seg != 0 || !bytes.Equal(got[1].Buf, single.Buf) {
		t.Fatalf("single datagram: Seg=%d, %d bytes", got[1].Seg, got[1].N)
	}
}
