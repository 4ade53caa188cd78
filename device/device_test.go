package device

import (
	"bytes"
	"encoding/binary"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/noise"
)

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

// exchange sends one packet a->b and checks it arrives unchanged.
func exchange(t *testing.T, a, b *testNode, pkt []byte) {
	t.Helper()
	a.write(t, pkt)
	got := b.read(t, 5*time.Second)
	if !bytes.Equal(got, pkt) {
		t.Fatalf("delivered %x, want %x", got, pkt)
	}
}

func TestTwoDevicesHandshakeAndTraffic(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("hello b")))
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("hello a")))
	exchange(t, a, b, udp6(a.addr6, b.addr6, []byte("hello over v6 inside")))
	if c := a.dev.Counters(); c.HandshakesDone != 1 {
		t.Errorf("a: %d handshakes completed, want 1", c.HandshakesDone)
	}
	var info *PeerInfo
	a.dev.Visit(func(Info) {}, func(p *PeerInfo) { c := *p; info = &c })
	if info == nil || info.TxBytes == 0 || info.RxBytes == 0 || info.LastHandshake.IsZero() {
		t.Errorf("peer info after traffic: %+v", info)
	}
}

func TestManyPacketsInOrderBothWays(t *testing.T) {
	// With crypto workers (batches finished in read order) and without
	// (the loop seals and opens every batch, the default on 1-2 CPUs).
	for _, workers := range []int{2, -1} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			testManyPacketsInOrder(t, workers)
		})
	}
}

func testManyPacketsInOrder(t *testing.T, workers int) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNodeWorkers(t, clock, 1, workers), newTestNodeWorkers(t, clock, 2, workers)
	connect(t, a, b, lo6, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("warm up")))
	const n = 10000
	// UDP is lossy when a receiver falls behind, so the sender keeps at
	// most a window of packets in flight; within it nothing may be lost,
	// reordered or changed.
	const window = 256
	for _, dir := range [][2]*testNode{{a, b}, {b, a}} {
		src, dst := dir[0], dir[1]
		var received atomic.Int64
		done := make(chan error, 1)
		go func() {
			for i := range n {
				got := dst.read(t, 5*time.Second)
				if got == nil {
					done <- fmt.Errorf("packet %d never arrived", i)
					return
				}
				if want := seqPacket(src, dst, i); !bytes.Equal(got, want) {
					done <- fmt.Errorf("packet %d: got seq %d (len %d), want in-order bit-exact", i, seqOf(got), len(got))
					return
				}
				received.Add(1)
			}
			done <- nil
		}()
		for i := range n {
			for int64(i)-received.Load() >= window {
				select {
				case err := <-done:
					t.Fatal(err)
				case <-time.After(100 * time.Microsecond):
				}
			}
			src.write(t, seqPacket(src, dst, i))
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestCryptoWorkers(t *testing.T) {
	for _, c := range []struct{ opt, procs, want int }{
		{0, 1, 0}, {0, 2, 0}, {0, 4, 4}, {0, 16, 16},
		{3, 2, 3}, {1, 64, 1}, {-1, 2, 0}, {-1, 8, 0},
	} {
		if got := cryptoWorkers(c.opt, c.procs); got != c.want {
			t.Errorf("cryptoWorkers(%d, %d) = %d, want %d", c.opt, c.procs, got, c.want)
		}
	}
}

func seqPacket(src, dst *testNode, i int) []byte {
	payload := make([]byte, 100+i%1200)
	binary.BigEndian.PutUint32(payload, uint32(i))
	for k := 4; k < len(payload); k++ {
		payload[k] = byte(i + k)
	}
	return udp4(src.addr, dst.addr, payload)
}

func seqOf(pkt []byte) int {
	if len(pkt) < 32 {
		return -1
	}
	return int(binary.BigEndian.Uint32(pkt[28:]))
}

func TestRekeyAfterTime(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("first session")))
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("reply")))
	first := a.dev.peers[b.pub].current.Load()
	clock.Advance(noise.RekeyAfterTime + time.Second)
	// The next packet from the initiator uses the old session and asks for
	// a new handshake; traffic keeps flowing throughout.
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("triggers rekey")))
	deadline := time.Now().Add(5 * time.Second)
	for a.dev.peers[b.pub].current.Load() == first {
		if time.Now().After(deadline) {
			t.Fatal("no new session after REKEY_AFTER_TIME")
		}
		time.Sleep(10 * time.Millisecond)
	}
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("new session")))
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("new session back")))
	if got := a.dev.Counters().HandshakesDone; got < 2 {
		t.Errorf("a completed %d handshakes, want 2", got)
	}
}

func TestPersistentKeepalive(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	ka := uint16(25)
	if err := a.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: b.pub, PersistentKeepalive: &ka}}}); err != nil {
		t.Fatal(err)
	}
	// Switching the keepalive on starts a handshake without any traffic.
	waitFor(t, "handshake from persistent keepalive", func() bool {
		return a.dev.Counters().HandshakesDone+b.dev.Counters().HandshakesDone >= 1
	})
	rx := func() uint64 {
		var n uint64
		b.dev.Visit(func(Info) {}, func(p *PeerInfo) { n = p.RxBytes })
		return n
	}
	before := rx()
	clock.Advance(26 * time.Second)
	a.dev.loop.poll.wake()
	waitFor(t, "keepalive after 25 s of silence", func() bool { return rx() > before })
	if got := b.read(t, 100*time.Millisecond); got != nil {
		t.Errorf("keepalive was written to the TUN: %x", got)
	}
}

func TestReplayedAndForgedDataDropped(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	proxy := newUDPProxy(t, b.dev.Port())
	connectVia(t, a, b, proxy)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("through the proxy")))
	data := proxy.lastData()
	if data == nil {
		t.Fatal("proxy saw no data message")
	}
	proxy.inject(data)
	waitFor(t, "replay counted", func() bool { return b.dev.Counters().Replay >= 1 })
	if got := b.read(t, 100*time.Millisecond); got != nil {
		t.Fatalf("replayed packet delivered: %x", got)
	}
	// A packet whose inner source is not the peer's is dropped.
	a.write(t, udp4(netip.MustParseAddr("198.18.9.9"), b.addr, []byte("spoofed")))
	waitFor(t, "source not allowed counted", func() bool { return b.dev.Counters().SourceNotAllowed >= 1 })
	// So is an IPv6 packet from the IPv4-mapped form of the peer's allowed
	// IPv4 address: only IPv6 prefixes allow IPv6 sources, as in the kernel.
	mapped := netip.AddrFrom16(a.addr.As16())
	a.write(t, udp6(mapped, b.addr6, []byte("mapped source")))
	waitFor(t, "mapped source not allowed counted", func() bool { return b.dev.Counters().SourceNotAllowed >= 2 })
	if got := b.read(t, 100*time.Millisecond); got != nil {
		t.Fatalf("packet from a mapped source delivered: %x", got)
	}
	// Garbage of every length: no panic, counted, tunnel still works.
	for n := range 200 {
		junk := make([]byte, n)
		for i := range junk {
			junk[i] = byte(n * i)
		}
		if n >= 4 {
			junk[0] = byte(1 + n%4)
			junk[1], junk[2], junk[3] = 0, 0, 0
		}
		proxy.inject(junk)
	}
	waitFor(t, "garbage counted", func() bool {
		c := b.dev.Counters()
		return c.BadLength+c.BadType+c.UnknownIndex+c.InvalidMAC1 >= 150
	})
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("still working")))
	// Known types of the wrong size count as bad_length, unknown types as
	// bad_type.
	before0 := b.dev.Counters()
	for _, m := range [][]byte{{1, 0, 0, 0, 9}, make([]byte, 149), {2}, {9, 0, 0, 0, 1, 2, 3}} {
		if len(m) == 149 {
			m[0] = 1 // an initiation is 148 bytes
		}
		proxy.inject(m)
	}
	waitFor(t, "wrong sizes and types counted", func() bool {
		c := b.dev.Counters()
		return c.BadLength-before0.BadLength == 3 && c.BadType-before0.BadType == 1
	})

	// Random datagrams, and truncated and bit-flipped copies of a real data
	// message: dropped and counted, never delivered, no panic.
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	before := b.dev.Counters()
	for i := range 2000 {
		var junk []byte
		switch i % 3 {
		case 0:
			junk = make([]byte, rng.IntN(1500))
			for k := range junk {
				junk[k] = byte(rng.Uint32())
			}
			if len(junk) >= 4 && rng.IntN(2) == 0 {
				junk[0], junk[1], junk[2], junk[3] = byte(1+rng.IntN(4)), 0, 0, 0
			}
		case 1:
			junk = data[:rng.IntN(len(data))]
		case 2:
			junk = append([]byte(nil), data...)
			junk[16+rng.IntN(len(junk)-16)] ^= byte(1 + rng.IntN(255))
		}
		proxy.inject(junk)
	}
	waitFor(t, "random datagrams counted", func() bool {
		c := b.dev.Counters()
		dropped := c.BadLength + c.BadType + c.UnknownIndex + c.InvalidMAC1 + c.DecryptFailed + c.Replay
		was := before.BadLength + before.BadType + before.UnknownIndex + before.InvalidMAC1 + before.DecryptFailed + before.Replay
		return dropped-was >= 1500
	})
	if got := b.read(t, 100*time.Millisecond); got != nil {
		t.Fatalf("a forged datagram was delivered: %x", got)
	}
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("still working after random input")))
}

func TestRoamingToNewSourcePort(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	proxy := newUDPProxy(t, b.dev.Port())
	connectVia(t, a, b, proxy)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("before roaming")))
	old := endpointOf(b, a)
	proxy.rebind(t)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("after roaming")))
	now := endpointOf(b, a)
	if now == old {
		t.Fatalf("endpoint still %v after the peer moved", old)
	}
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("reply reaches the new port")))
}

func TestNoRouteAnswersICMP(t *testing.T) {
	checkNoGoroutineLeak(t)
	a := newTestNode(t, newFakeClock(), 1)
	a.write(t, udp4(a.addr, netip.MustParseAddr("198.19.7.7"), []byte("nowhere")))
	got := a.read(t, 2*time.Second)
	if len(got) < 28 || got[9] != 1 || got[20] != 3 || got[21] != 1 {
		t.Fatalf("want ICMP host unreachable, got %x", got)
	}
	if checksum(got[:20], 0) != 0 || checksum(got[20:], 0) != 0 {
		t.Error("bad checksum in ICMP reply")
	}
	if a.dev.Counters().NoRoute != 1 {
		t.Errorf("no-route drops = %d, want 1", a.dev.Counters().NoRoute)
	}
}

func endpointOf(n, peer *testNode) netip.AddrPort {
	var ep netip.AddrPort
	n.dev.Visit(func(Info) {}, func(p *PeerInfo) {
		if p.PublicKey == peer.pub {
			ep = p.Endpoint
		}
	})
	return ep
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// connectVia peers a and b with a's traffic to b going through proxy.
func connectVia(t *testing.T, a, b *testNode, proxy *udpProxy) {
	t.Helper()
	connect(t, a, b, lo4, 0)
	ep := proxy.addr()
	if err := a.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: b.pub, Endpoint: &ep}}}); err != nil {
		t.Fatal(err)
	}
	// b must not know a's real port, so that everything goes via the proxy.
	if err := b.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: a.pub, Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: a.pub, AllowedIPs: []AllowedIPChange{{Prefix: netip.PrefixFrom(a.addr, 32)}}}}}); err != nil {
		t.Fatal(err)
	}
}

// TestIdleDeviceSleeps checks that a configured device with a peer and no
// traffic does not wake up at all: no periodic timers.
func TestIdleDeviceSleeps(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	time.Sleep(100 * time.Millisecond) // let configuration wake-ups pass
	before := a.dev.loop.wakeups.Load()
	time.Sleep(1500 * time.Millisecond)
	if n := a.dev.loop.wakeups.Load() - before; n != 0 {
		t.Errorf("idle device woke %d times in 1.5 s, want 0", n)
	}
}

// TestNoRouteNoICMPForNonUnicast: packets to multicast or broadcast
// addresses, or from an unspecified source, get no ICMP error (they are
// still counted as no-route drops); the next unicast one does.
func TestNoRouteNoICMPForNonUnicast(t *testing.T) {
	checkNoGoroutineLeak(t)
	a := newTestNode(t, newFakeClock(), 1)
	for _, dst := range []string{"224.0.0.251", "255.255.255.255", "239.1.2.3", "240.0.0.1"} {
		a.write(t, udp4(a.addr, netip.MustParseAddr(dst), []byte("group")))
	}
	a.write(t, udp4(netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("198.19.7.8"), []byte("no source")))
	a.write(t, udp4(a.addr, netip.MustParseAddr("198.19.7.7"), []byte("nowhere")))
	got := a.read(t, 2*time.Second)
	if len(got) < 48 || got[20] != 3 || netip.AddrFrom4([4]byte(got[44:48])) != netip.MustParseAddr("198.19.7.7") {
		t.Fatalf("first ICMP reply is not for the unicast packet: %x", got)
	}
	waitFor(t, "no-route drops", func() bool { return a.dev.Counters().NoRoute == 6 })
}

func TestICMPEligible(t *testing.T) {
	v4 := func(src, dst string, proto, typ byte, ihl int) []byte {
		p := make([]byte, ihl+8)
		p[0] = 0x40 | byte(ihl/4)
		p[9] = proto
		copy(p[12:16], netip.MustParseAddr(src).AsSlice())
		copy(p[16:20], netip.MustParseAddr(dst).AsSlice())
		p[ihl] = typ
		return p
	}
	for _, c := range []struct {
		pkt  []byte
		want bool
	}{
		{v4("198.19.0.1", "198.19.7.7", 17, 0, 20), true},
		{v4("198.19.0.1", "198.19.7.7", 1, 8, 20), true},  // echo request
		{v4("198.19.0.1", "198.19.7.7", 1, 3, 20), false}, // an ICMP error
		{v4("198.19.0.1", "198.19.7.7", 1, 3, 24), false}, // after options
		{v4("198.19.0.1", "198.19.7.7", 1, 8, 24), true},
		{v4("198.19.0.1", "224.0.0.1", 17, 0, 20), false},
		{v4("198.19.0.1", "255.255.255.255", 17, 0, 20), false},
		{v4("0.0.0.0", "198.19.7.7", 17, 0, 20), false},
		{v4("224.0.0.9", "198.19.7.7", 17, 0, 20), false},
	} {
		if got := icmp4Eligible(c.pkt); got != c.want {
			t.Errorf("%x: eligible %v, want %v", c.pkt[:20], got, c.want)
		}
	}
	v6ext := func(src, dst string, next byte, ext []byte, typ byte) []byte {
		p := make([]byte, 40+len(ext)+8)
		p[0], p[6] = 0x60, next
		copy(p[8:24], netip.MustParseAddr(src).AsSlice())
		copy(p[24:40], netip.MustParseAddr(dst).AsSlice())
		copy(p[40:], ext)
		p[40+len(ext)] = typ
		return p
	}
	v6 := func(src, dst string, next, typ byte) []byte {
		p := make([]byte, 48)
		p[0], p[6] = 0x60, next
		copy(p[8:24], netip.MustParseAddr(src).AsSlice())
		copy(p[24:40], netip.MustParseAddr(dst).AsSlice())
		p[40] = typ
		return p
	}
	for _, c := range []struct {
		pkt  []byte
		want bool
	}{
		{v6("fd00::1", "fd00::7", 17, 0), true},
		{v6("fd00::1", "fd00::7", 58, 128), true},  // echo request
		{v6("fd00::1", "fd00::7", 58, 1), false},   // an error
		{v6("fd00::1", "fd00::7", 58, 137), false}, // redirect
		{v6("fd00::1", "ff02::1", 58, 128), false},
		{v6("fe80::1", "ff02::2", 58, 133), false}, // router solicitation
		{v6("::", "fd00::7", 17, 0), false},
		// Behind extension headers (RFC 4443 2.4(e), as the kernel's
		// icmp6_send): destination options, a first fragment, AH.
		{v6ext("fd00::1", "fd00::7", 60, []byte{58, 0, 1, 4, 0, 0, 0, 0}, 1), false},
		{v6ext("fd00::1", "fd00::7", 60, []byte{58, 0, 1, 4, 0, 0, 0, 0}, 128), true},
		{v6ext("fd00::1", "fd00::7", 44, []byte{58, 0, 0, 0, 0, 0, 0, 9}, 1), false},
		{v6ext("fd00::1", "fd00::7", 0, []byte{51, 0, 1, 4, 0, 0, 0, 0, 58, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1}, 3), false},
		// A later fragment shows no ICMPv6 header: answered.
		{v6ext("fd00::1", "fd00::7", 44, []byte{58, 0, 0, 8, 0, 0, 0, 9}, 1), true},
	} {
		if got := icmp6Eligible(c.pkt); got != c.want {
			t.Errorf("%x: eligible %v, want %v", c.pkt[8:40], got, c.want)
		}
	}
	for _, c := range []struct {
		cidr, want string
	}{
		{"198.19.0.1/24", "198.19.0.255"},
		{"198.18.4.9/22", "198.18.7.255"},
		{"198.19.0.1/31", ""},
		{"198.19.0.1/32", ""},
		{"fd00::1/64", ""},
	} {
		ip, n, _ := net.ParseCIDR(c.cidr)
		n.IP = ip
		b, ok := directedBroadcast(n)
		if got := map[bool]string{true: b.String(), false: ""}[ok]; got != c.want {
			t.Errorf("%s: broadcast %q, want %q", c.cidr, got, c.want)
		}
	}
}

// TestStagedPacketsGoFirst: packets written while the first handshake runs
// reach the peer in the order they were written. Those staged for the
// session go out before any read after it became usable (staging may
// drop the oldest past its bound, never reorder).
func TestStagedPacketsGoFirst(t *testing.T) {
	checkNoGoroutineLeak(t)
	for round := range 5 {
		clock := newFakeClock()
		a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
		connect(t, a, b, lo4, 0)
		const n = 400
		// b's side is read while a writes, so that nothing is lost for
		// want of room in b's TUN.
		type result struct{ last, got, bad int }
		done := make(chan result, 1)
		go func() {
			r := result{last: -1, bad: -1}
			for wait := 2 * time.Second; ; wait = 200 * time.Millisecond {
				pkt := b.read(t, wait)
				if pkt == nil {
					break
				}
				seq := seqOf(pkt)
				if seq <= r.last && r.bad < 0 {
					r.bad = seq
				}
				r.last = max(r.last, seq)
				r.got++
			}
			done <- r
		}()
		for i := range n {
			a.write(t, seqPacket(a, b, i))
			if i%8 == 7 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		r := <-done
		if r.bad >= 0 {
			t.Fatalf("round %d: packet %d arrived after a later one", round, r.bad)
		}
		if last, got := r.last, r.got; last != n-1 || got < maxStaged {
			t.Fatalf("round %d: %d packets arrived, last %d; want at least %d ending with %d", round, got, last, maxStaged, n-1)
		}
		a.dev.Close()
		b.dev.Close()
	}
}

// TestStagedThenEndpointSet: a packet staged for a peer with no endpoint
// yet does not stop later packets from asking for a handshake; once the
// endpoint is set, the next packet starts one and both arrive in order.
func TestStagedThenEndpointSet(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	if err := a.dev.Apply(&Config{Peers: []PeerConfig{{
		PublicKey:  b.pub,
		AllowedIPs: []AllowedIPChange{{Prefix: netip.PrefixFrom(b.addr, 32)}},
	}}}); err != nil {
		t.Fatal(err)
	}
	epA := netip.AddrPortFrom(lo4, a.dev.Port())
	if err := b.dev.Apply(&Config{Peers: []PeerConfig{{
		PublicKey:  a.pub,
		Endpoint:   &epA,
		AllowedIPs: []AllowedIPChange{{Prefix: netip.PrefixFrom(a.addr, 32)}},
	}}}); err != nil {
		t.Fatal(err)
	}
	first := udp4(a.addr, b.addr, []byte("staged without an endpoint"))
	a.write(t, first)
	if got := b.read(t, 200*time.Millisecond); got != nil {
		t.Fatalf("delivered %x with no endpoint", got)
	}
	epB := netip.AddrPortFrom(lo4, b.dev.Port())
	if err := a.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: b.pub, UpdateOnly: true, Endpoint: &epB}}}); err != nil {
		t.Fatal(err)
	}
	second := udp4(a.addr, b.addr, []byte("after the endpoint"))
	a.write(t, second)
	for _, want := range [][]byte{first, second} {
		if got := b.read(t, 3*time.Second); !bytes.Equal(got, want) {
			t.Fatalf("delivered %x, want %x", got, want)
		}
	}
}

// TestRoutingLoopDropped: when the host routes the peer's endpoint into the
// tunnel, the device reads its own datagrams back from the TUN; it drops
// them (counted, warned) instead of sealing them again, round after round.
// A datagram to the same endpoint from another port is still sent.
func TestRoutingLoopDropped(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	lo := []AllowedIPChange{{Prefix: netip.PrefixFrom(lo4, 32)}}
	if err := a.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: b.pub, AllowedIPs: lo}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: a.pub, AllowedIPs: lo}}}); err != nil {
		t.Fatal(err)
	}
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("session up")))
	own := udp4(lo4, lo4, []byte("our own datagram, back from the TUN"))
	binary.BigEndian.PutUint16(own[20:], a.dev.Port())
	binary.BigEndian.PutUint16(own[22:], b.dev.Port())
	a.write(t, own)
	waitFor(t, "the loop drop", func() bool { return a.dev.Counters().RoutingLoop == 1 })
	other := udp4(lo4, lo4, []byte("another program's datagram"))
	binary.BigEndian.PutUint16(other[22:], b.dev.Port())
	a.write(t, other)
	if got := b.read(t, 2*time.Second); len(got) < 28 || string(got[28:]) != "another program's datagram" {
		t.Fatalf("b got %q, want the other program's datagram (and not our own)", got)
	}
	if n := a.dev.Counters().RoutingLoop; n != 1 {
		t.Errorf("routing loop drops = %d, want 1", n)
	}
}

// TestNoInitiationRightAfterResponding: having just answered the peer's
// initiation, the device sends no initiation of its own for REKEY_TIMEOUT,
// as the kernel (last_sent_handshake) and wireguard-go do; one sent then
// would replace the handshake in flight, and when both sides do it their
// responses cross and are refused (seen on a lossy link: recoveries of
// 5-10 s instead of 0.4 s).
func TestNoInitiationRightAfterResponding(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	pa, pb := b.dev.peerFor(a.pub), a.dev.peerFor(b.pub)
	a.dev.sendInitiation(pb, false)
	waitFor(t, "b to answer a's initiation", func() bool { return pa.next.Load() != nil || pa.current.Load() != nil })
	// lastSentHandshake moves with every initiation b sends (the handshake
	// index would not do: a's answer to one clears it at once).
	last := func() time.Time {
		pa.mu.Lock()
		defer pa.mu.Unlock()
		return pa.lastSentHandshake
	}
	answered := last()
	b.dev.sendInitiation(pa, false)
	if !last().Equal(answered) {
		t.Fatal("b sent an initiation right after answering a's")
	}
	clock.Advance(noise.RekeyTimeout)
	b.dev.sendInitiation(pa, false)
	if last().Equal(answered) {
		t.Fatal("b sent no initiation REKEY_TIMEOUT after answering")
	}
}

// TestHandshakeCancelsNewHandshakeTimer: data sent arms the new-handshake
// timer (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT without an answer); an
// authenticated handshake message from the peer cancels it as any
// authenticated packet does, on the initiator (the response to a rekey the
// data asked for) and on the responder (an initiation). Only data cancelled
// it, so a peer that answered a rekey with just its response got a second,
// needless handshake 15 s later (seen on the wire against wireguard-go).
func TestHandshakeCancelsNewHandshakeTimer(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	pb, pa := a.dev.peerFor(b.pub), b.dev.peerFor(a.pub)
	armed := func(d *Device, p *Peer) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return d.pendingLocked(p, timerNewHandshake)
	}
	rx := func(p *Peer) uint64 { return p.rxBytes.Load() }
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("first session")))
	// b owes a passive keepalive for that packet: let it go now, so that
	// nothing but the handshake reaches a later.
	before := rx(pb)
	clock.Advance(noise.KeepaliveTimeout + time.Second)
	b.dev.loop.poll.wake()
	waitFor(t, "b's passive keepalive", func() bool { return rx(pb) > before })
	if armed(a.dev, pb) {
		t.Fatal("a's new-handshake timer still armed after b's keepalive")
	}

	// Initiator: the next packet after REKEY_AFTER_TIME arms the timer and
	// asks for a rekey; b answers with its response only.
	clock.Advance(noise.RekeyAfterTime)
	done := a.dev.Counters().HandshakesDone
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("asks for a rekey")))
	waitFor(t, "the rekey", func() bool { return a.dev.Counters().HandshakesDone > done })
	if armed(a.dev, pb) {
		t.Error("a's new-handshake timer still armed after b's handshake response")
	}

	// a confirms the new session with a keepalive, which cancels b's
	// timer too: let it arrive first.
	waitFor(t, "b to take the new session", func() bool { return pa.next.Load() == nil })

	// Responder: b sends data that a does not answer, then a initiates.
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("unanswered")))
	waitFor(t, "b's data to arm its new-handshake timer", func() bool { return armed(b.dev, pa) })
	clock.Advance(noise.RekeyTimeout) // a may initiate again
	done = a.dev.Counters().HandshakesDone
	a.dev.sendInitiation(pb, false)
	waitFor(t, "a's second handshake", func() bool { return a.dev.Counters().HandshakesDone > done })
	if armed(b.dev, pa) {
		t.Error("b's new-handshake timer still armed after a's initiation")
	}
}
