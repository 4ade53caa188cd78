package tun

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNetns runs f on a goroutine whose thread is in namespace ns, and waits.
// Sockets and TUNs created by f stay in ns.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			done <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			done <- err
			return
		}
		f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// wire copies packets between two TUNs through their Read and Write, the
// code under test, until stop is closed. It polls both fds.
func wire(a, b *Native, stop <-chan struct{}, readSizes *[65]int) {
	bufs, sizes := makeBufs(a.BatchSize(), 65536+64), make([]int, a.BatchSize())
	fds := []unix.PollFd{{Fd: int32(a.Fd()), Events: unix.POLLIN}, {Fd: int32(b.Fd()), Events: unix.POLLIN}}
	devs := [2]*Native{a, b}
	for {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := unix.Poll(fds, 50); err != nil && err != unix.EINTR {
			return
		}
		for i, d := range devs {
			for {
				n, err := d.Read(bufs, sizes, 16)
				if n == 0 || err != nil {
					break
				}
				readSizes[min(n, 64)]++
				out := bufs[:n]
				for j := range out {
					out[j] = out[j][:16+sizes[j]]
				}
				writeAll(devs[1-i], out)
				for j := range out {
					out[j] = out[j][:cap(out[j])]
				}
			}
		}
	}
}

// writeAll writes the batch, retrying EAGAIN a bounded number of times.
func writeAll(d *Native, bufs [][]byte) {
	for tries := 0; len(bufs) > 0 && tries < 1000; tries++ {
		n, err := d.Write(bufs, 16)
		bufs = bufs[n:]
		if err != nil && !errors.Is(err, ErrWouldBlock) {
			return
		}
		if n == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// TestE2EOffloadTCPTransfer sends 16 MiB over TCP between two namespaces
// whose only link is two TUNs bridged by wire, with offloads on and off,
// and checks the data with SHA-256.
func TestE2EOffloadTCPTransfer(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		off bool
		net string
		ext bool // IPV6_DSTOPTS on the sending socket
	}{{true, "tcp4", false}, {true, "tcp6", false}, {false, "tcp4", false}, {true, "tcp6", true}} {
		name := fmt.Sprintf("offload=%v/%s", c.off, c.net)
		if c.ext {
			name += "/dstopts"
		}
		t.Run(name, func(t *testing.T) { tcpTransfer(t, c.off, c.net, c.ext) })
	}
}

// tcpTransfer sends 16 MiB from A to B and checks them. With ext, the
// sending socket puts a destination options header in every packet
// (IPV6_DSTOPTS), so the TSO super-packets carry it: they were refused,
// and the transfer hung after slow start.
func tcpTransfer(t *testing.T, offload bool, network string, ext bool) {
	tag := "on" + network
	if !offload {
		tag = "off" + network
	}
	if ext {
		tag += "x"
	}
	nsA, nsB := testNetns(t, "oa"+tag), testNetns(t, "ob"+tag)
	var a, b *Native
	var errA, errB error
	inNetns(t, nsA, func() { a, errA = CreateWithOptions("wgoa", 1420, Options{Offload: offload}) })
	inNetns(t, nsB, func() { b, errB = CreateWithOptions("wgob", 1420, Options{Offload: offload}) })
	if errA != nil || errB != nil {
		t.Fatalf("create: %v %v", errA, errB)
	}
	defer a.Close()
	defer b.Close()
	t.Logf("offloads: %s / %s", a.Offloads(), b.Offloads())
	if offload && a.Offloads()&OffloadTSO4 == 0 {
		t.Logf("kernel gave no TSO4; the transfer still runs")
	}
	ipIn(t, nsA, "addr", "add", "198.18.0.1/30", "dev", "wgoa")
	ipIn(t, nsB, "addr", "add", "198.18.0.2/30", "dev", "wgob")
	ipIn(t, nsA, "addr", "add", "fd00:18::1/64", "dev", "wgoa", "nodad")
	ipIn(t, nsB, "addr", "add", "fd00:18::2/64", "dev", "wgob", "nodad")
	ipIn(t, nsA, "link", "set", "wgoa", "up")
	ipIn(t, nsB, "link", "set", "wgob", "up")

	stop := make(chan struct{})
	var readSizes [65]int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); wire(a, b, stop, &readSizes) }()
	defer func() { close(stop); wg.Wait() }()

	var ln net.Listener
	var err error
	inNetns(t, nsB, func() { ln, err = net.Listen(network, listenAddr(network)) })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 16 << 20
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		io.Copy(h, io.LimitReader(c, size))
		var s [32]byte
		copy(s[:], h.Sum(nil))
		got <- s
	}()
	var c net.Conn
	dialer := net.Dialer{Timeout: 5 * time.Second}
	if ext {
		// A PadN option filling the 8-byte header.
		opts := string([]byte{0, 0, 1, 4, 0, 0, 0, 0})
		dialer.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, opts)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	inNetns(t, nsA, func() {
		c, err = dialer.Dial(network, ln.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*131 + i>>11)
	}
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	sum := <-got
	el := time.Since(start)
	if sum != sha256.Sum256(data) {
		t.Fatal("SHA-256 of received data differs")
	}
	t.Logf("16 MiB in %v: %.0f MB/s", el, float64(size)/el.Seconds()/1e6)
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	logOffloadStats(t, a, b, &readSizes)
	if ext && offload && a.Offloads()&OffloadTSO6 != 0 && a.off.stats.superReads == 0 {
		t.Error("no TSO super-packet with the destination options header was read")
	}
}

func logOffloadStats(t *testing.T, a, b *Native, readSizes *[65]int) {
	hist := ""
	for n, c := range readSizes {
		if c > 0 {
			hist += fmt.Sprintf(" %d:%d", n, c)
		}
	}
	t.Logf("packets per Read (n:count):%s", hist)
	for _, d := range []*Native{a, b} {
		if d.off != nil {
			s := d.off.stats
			t.Logf("%s: super reads %d (%d segments), plain reads %d; super writes %d (%d packets), plain writes %d",
				d.name, s.superReads, s.segments, s.plainReads, s.superOut, s.mergedOut, s.plainOut)
		}
	}
}

// TestE2EOffloadLonePacket: with offloads on, a lone UDP datagram from the
// stack comes out of Read at once as one packet whose checksum the kernel
// left partial and Read completed; a reply written with Write (GSO_NONE
// header by writev) reaches the socket, and Write does not allocate.
func TestE2EOffloadLonePacket(t *testing.T) {
	needRoot(t)
	ns := testNetns(t, "lone")
	var d *Native
	var err error
	inNetns(t, ns, func() { d, err = CreateWithOptions("wgol", 1420, Options{Offload: true}) })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ipIn(t, ns, "addr", "add", "198.18.1.1/24", "dev", "wgol")
	ipIn(t, ns, "link", "set", "wgol", "up")
	var sock net.PacketConn
	inNetns(t, ns, func() { sock, err = net.ListenPacket("udp4", "198.18.1.1:0") })
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	peer := &net.UDPAddr{IP: net.IPv4(198, 18, 1, 2), Port: 4242}
	if _, err := sock.WriteTo([]byte("a lone packet, odd length"), peer); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := makeBufs(d.BatchSize(), 65536+64), make([]int, d.BatchSize())
	fds := []unix.PollFd{{Fd: int32(d.Fd()), Events: unix.POLLIN}}
	// Link-up traffic (IPv6 router solicitations) may come first: look for
	// our datagram among what Read returns.
	var pkt []byte
	for deadline := time.Now().Add(5 * time.Second); pkt == nil && time.Now().Before(deadline); {
		unix.Poll(fds, 100)
		n, _ := d.Read(bufs, sizes, 16)
		for i := range n {
			p := bufs[i][16 : 16+sizes[i]]
			if p[0] == 0x45 && p[9] == protoUDP && binary.BigEndian.Uint16(p[22:]) == 4242 {
				pkt = p
			}
		}
	}
	if pkt == nil {
		t.Fatal("datagram never came out of Read")
	}
	checkPacket(t, pkt, false, true)
	reply := udpReply(pkt)
	if n, err := d.Write([][]byte{reply}, 0); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	m, from, err := sock.ReadFrom(buf)
	if err != nil || string(buf[:m]) != "a lone packet, odd length" || from.String() != peer.String() {
		t.Fatalf("reply: %q from %v, %v", buf[:m], from, err)
	}
	batch := [][]byte{reply}
	if a := testing.AllocsPerRun(50, func() { d.Write(batch, 0) }); a != 0 {
		t.Errorf("Write allocates %v times per packet", a)
	}
	if d.Offloads()&OffloadUSO4 != 0 {
		checkUSOWrite(t, d, sock, reply)
	}
}

// checkUSOWrite writes three datagrams of one flow, which Write merges into
// one USO super-packet, and checks that the socket gets all three.
func checkUSOWrite(t *testing.T, d *Native, sock net.PacketConn, reply []byte) {
	buf := make([]byte, 100)
	sock.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for { // drain the replies of the allocation check
		if _, _, err := sock.ReadFrom(buf); err != nil {
			break
		}
	}
	var batch [][]byte
	for k := range 3 {
		r := append([]byte{}, reply...)
		binary.BigEndian.PutUint16(r[4:], binary.BigEndian.Uint16(reply[4:])+uint16(k))
		r[28] = byte('0' + k)
		batch = append(batch, udpReply(udpReply(r)))
	}
	before := d.off.stats.superOut
	if n, err := d.Write(batch, 0); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if d.off.stats.superOut != before+1 {
		t.Errorf("3 datagrams were not merged into one USO write")
	}
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	for k := range 3 {
		m, _, err := sock.ReadFrom(buf)
		if err != nil || m != len(reply)-28 || buf[0] != byte('0'+k) {
			t.Fatalf("datagram %d: %q, %v", k, buf[:m], err)
		}
	}
}

// udpReply swaps addresses and ports of an IPv4/UDP packet and recomputes
// its checksums with the slow reference.
func udpReply(p []byte) []byte {
	r := append([]byte{}, p...)
	copy(r[12:16], p[16:20])
	copy(r[16:20], p[12:16])
	copy(r[20:22], p[22:24])
	copy(r[22:24], p[20:22])
	r[10], r[11], r[26], r[27] = 0, 0, 0, 0
	binary.BigEndian.PutUint16(r[10:], ^slowSum(r[:20]))
	binary.BigEndian.PutUint16(r[26:], ^slowSum(pseudo(r, false, protoUDP, len(r)-20), r[20:]))
	return r
}

// listenAddr is the server's address in namespace B for network.
func listenAddr(network string) string {
	if network == "tcp6" {
		return "[fd00:18::2]:0"
	}
	return "198.18.0.2:0"
}
