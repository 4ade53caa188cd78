package ipc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
)

type testServer struct {
	l    *Listener
	dev  *fakeDevice
	dir  string
	done chan error
}

func startServer(t *testing.T, lim Limits) *testServer {
	t.Helper()
	dir := t.TempDir()
	l, err := ListenConfig{Dir: dir, Limits: lim}.Listen("wgdt0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{l: l, dev: newFakeDevice(), dir: dir, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { s.done <- l.Serve(context.Background(), s.dev, log) }()
	t.Cleanup(func() { l.Close() })
	return s
}

// roundTrip sends req on c and reads one reply through its blank line
// after the errno line.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for {
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			t.Fatalf("reading reply: %v (so far %q)", err, out.String())
		}
		if strings.HasPrefix(line, "errno=") {
			blank, err := r.ReadString('\n')
			if err != nil || blank != "\n" {
				t.Fatalf("no blank line after errno: %q %v", blank, err)
			}
			return out.String()
		}
	}
}

func (s *testServer) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", s.l.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func (s *testServer) dump(t *testing.T) string {
	var buf bytes.Buffer
	if err := WriteGet(&buf, s.dev); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestServerSeveralOperationsPerConnection(t *testing.T) {
	s := startServer(t, Limits{})
	c, r := s.dial(t)
	if got := roundTrip(t, c, r, "set=1\nlisten_port=51820\npublic_key="+hexB+"\nallowed_ip=198.18.0.0/16\n\n"); got != "errno=0\n" {
		t.Fatalf("set: %q", got)
	}
	got := roundTrip(t, c, r, "get=1\n\n")
	if !strings.HasPrefix(got, "listen_port=51820\npublic_key="+hexB+"\n") || !strings.HasSuffix(got, "allowed_ip=198.18.0.0/16\nerrno=0\n") {
		t.Fatalf("get: %q", got)
	}
	if got := roundTrip(t, c, r, "get=1\nX"); got != "errno=-22\n" {
		t.Fatalf("get with trailing byte: %q", got)
	}
	s.dev.setBusyPort(4000)
	if got := roundTrip(t, c, r, "set=1\nlisten_port=4000\n\n"); got != "errno=-98\n" {
		t.Fatalf("busy port: %q", got)
	}
}

// TestServerBadLineChangesNothing: one bad line in the middle of a set
// leaves the device exactly as it was, and the connection usable.
func TestServerBadLineChangesNothing(t *testing.T) {
	s := startServer(t, Limits{})
	c, r := s.dial(t)
	roundTrip(t, c, r, "set=1\nlisten_port=1\npublic_key="+hexA+"\nallowed_ip=10.0.0.0/8\n\n")
	before, applies := s.dump(t), s.dev.appliedCount()
	bad := "set=1\nreplace_peers=true\nlisten_port=2\npublic_key=" + hexB + "\nallowed_ip=10.0.0.0/8\nendpoint=nonsense\nallowed_ip=10.1.0.0/16\n\n"
	if got := roundTrip(t, c, r, bad); got != "errno=-22\n" {
		t.Fatalf("bad set: %q", got)
	}
	if after := s.dump(t); after != before || s.dev.appliedCount() != applies {
		t.Fatalf("device changed:\n%s\nwas\n%s", after, before)
	}
	if got := roundTrip(t, c, r, "set=1\nfwmark=3\n\n"); got != "errno=0\n" {
		t.Fatalf("next set on the same connection: %q", got)
	}
}

func TestServerInvalidOperationCloses(t *testing.T) {
	s := startServer(t, Limits{})
	c, r := s.dial(t)
	io.WriteString(c, "hello=1\n")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

// TestServerDisconnectMidRequest: a client that goes away in the middle of
// a set changes nothing.
func TestServerDisconnectMidRequest(t *testing.T) {
	s := startServer(t, Limits{})
	c, _ := s.dial(t)
	io.WriteString(c, "set=1\nlisten_port=9\npublic_key="+hexA+"\n")
	c.Close()
	c2, r2 := s.dial(t)
	if got := roundTrip(t, c2, r2, "get=1\n\n"); got != "errno=0\n" {
		t.Fatalf("device changed: %q", got)
	}
}

// TestServerSlowClientDoesNotBlockOthers: a client that stalls mid-request
// or sends nothing neither blocks other clients nor lives past the idle
// timeout.
func TestServerSlowClientDoesNotBlockOthers(t *testing.T) {
	s := startServer(t, Limits{IdleTimeout: 300 * time.Millisecond})
	silent, sr := s.dial(t)
	stalled, tr := s.dial(t)
	io.WriteString(stalled, "set=1\nlisten_port=7\n")
	c, r := s.dial(t)
	start := time.Now()
	if got := roundTrip(t, c, r, "set=1\nlisten_port=8\n\n"); got != "errno=0\n" {
		t.Fatalf("%q", got)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("other client waited %v", d)
	}
	silent.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(sr); err != nil || len(b) != 0 {
		t.Errorf("silent connection: want EOF, got %q %v", b, err)
	}
	stalled.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(tr); err != nil || string(b) != "errno=-5\n\n" {
		t.Errorf("stalled connection: want errno=-5 then EOF, got %q %v", b, err)
	}
	c, r = s.dial(t)
	if got := roundTrip(t, c, r, "get=1\n\n"); got != "listen_port=8\nerrno=0\n" {
		t.Errorf("stalled set leaked into the device: %q", got)
	}
}

// TestServerOversize: an over-long line is answered EIO with nothing
// changed; a request over its byte bound is answered EMSGSIZE and closed,
// without the daemon buffering it.
func TestServerOversize(t *testing.T) {
	s := startServer(t, Limits{MaxRequestBytes: 1 << 20})
	c, r := s.dial(t)
	if got := roundTrip(t, c, r, "set=1\nlisten_port=1"+strings.Repeat("0", 100000)+"\n\n"); got != "errno=-5\n" {
		t.Fatalf("long line: %q", got)
	}
	if got := roundTrip(t, c, r, "get=1\n\n"); got != "errno=0\n" {
		t.Fatalf("device changed: %q", got)
	}
	// The reply (errno=-90 and a close) proves the server stopped reading
	// at the limit; the heap, measured after a collection on both sides so
	// that garbage from the parse does not count, proves it kept nothing.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	go func() {
		io.WriteString(c, "set=1\n")
		line := []byte("public_key=" + hexA + "\n")
		for range (2 << 20) / len(line) {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(r)
	if string(got) != "errno=-90\n\n" {
		t.Fatalf("too large: %q", got)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grow := int64(ms.HeapInuse) - int64(before); grow > 4<<20 {
		t.Errorf("heap grew by %d bytes", grow)
	}
	if out := s.dump(t); out != "" {
		t.Errorf("device changed: %q", out)
	}
}

func TestServerTooManyConnections(t *testing.T) {
	s := startServer(t, Limits{MaxConns: 2})
	s.dial(t)
	s.dial(t)
	time.Sleep(50 * time.Millisecond) // let Serve take both
	c, r := s.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("third connection: want EOF, got %v", err)
	}
}

func TestListenSocketModeAndStale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wireguard")
	l, err := ListenConfig{Dir: dir}.Listen("wgdt1")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(l.Path())
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o700 {
		t.Errorf("socket mode %v, want srwx------", st.Mode())
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o755 {
		t.Errorf("dir mode %v", dst.Mode())
	}
	if _, err := (ListenConfig{Dir: dir}).Listen("wgdt1"); !errors.Is(err, ErrInUse) {
		t.Errorf("second daemon: %v, want ErrInUse", err)
	}
	// Make the socket stale: a bound socket file nobody accepts on.
	l.ln.SetUnlinkOnClose(false)
	l.ln.Close()
	l2, err := ListenConfig{Dir: dir}.Listen("wgdt1")
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	select {
	case <-l.Removed():
	case <-time.After(5 * time.Second):
		t.Fatal("replacement not reported by Removed")
	}
	l.Close() // must not unlink l2's socket
	if _, err := os.Stat(l2.Path()); err != nil {
		t.Fatalf("Close of the old listener removed the new socket: %v", err)
	}
	l2.Close()
	if _, err := os.Stat(l2.Path()); !os.IsNotExist(err) {
		t.Errorf("socket not removed on Close: %v", err)
	}
	for _, bad := range []string{"", "a/b", "..", strings.Repeat("x", 16)} {
		if _, err := (ListenConfig{Dir: dir}).Listen(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

func TestRemovedWhenUnlinked(t *testing.T) {
	s := startServer(t, Limits{})
	select {
	case <-s.l.Removed():
		t.Fatal("Removed closed early")
	case <-time.After(50 * time.Millisecond):
	}
	os.WriteFile(filepath.Join(s.dir, "other.sock"), nil, 0o600) // unrelated churn
	if err := os.Remove(s.l.Path()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.l.Removed():
	case <-time.After(5 * time.Second):
		t.Fatal("Removed not closed after unlink")
	}
}

// TestCloseLeavesNoGoroutines: Close ends Serve, open connections and the
// watcher.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	s := startServer(t, Limits{})
	c, r := s.dial(t)
	roundTrip(t, c, r, "get=1\n\n")
	s.dial(t)
	if err := s.l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, was %d:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

func TestServeStopsOnContext(t *testing.T) {
	l, err := ListenConfig{Dir: t.TempDir()}.Listen("wgdt2")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, newFakeDevice(), nil) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestClientAgainstServer(t *testing.T) {
	s := startServer(t, Limits{})
	cl, err := DialPath(s.l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfg, err := parseString(t, "listen_port=51820\npublic_key="+hexB+"\nendpoint=198.18.0.2:1\nallowed_ip=198.18.2.0/24\n\n", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Set(cfg); err != nil {
		t.Fatal(err)
	}
	info, peers, err := cl.Get()
	if err != nil || info.ListenPort != 51820 || len(peers) != 1 || peers[0].Endpoint.String() != "198.18.0.2:1" ||
		len(peers[0].AllowedIPs) != 1 || peers[0].AllowedIPs[0].String() != "198.18.2.0/24" {
		t.Fatalf("Get: %+v %+v %v", info, peers, err)
	}
	s.dev.setBusyPort(7)
	err = cl.Set(&device.Config{ListenPort: ptr(uint16(7))})
	var e *Error
	if !errors.As(err, &e) || e.Errno != unix.EADDRINUSE {
		t.Fatalf("busy port: %v", err)
	}
	names, err := InterfacesIn(s.dir)
	if err != nil || len(names) != 1 || names[0] != "wgdt0" {
		t.Fatalf("InterfacesIn: %v %v", names, err)
	}
}

// setPeers configures n peers with one allowed IP each through the socket
// and returns the get reply the device now gives, errno line included.
func (s *testServer) setPeers(t *testing.T, n int) string {
	t.Helper()
	c, r := s.dial(t)
	var req strings.Builder
	req.WriteString("set=1\n")
	for i := range n {
		fmt.Fprintf(&req, "public_key=%064x\nallowed_ip=198.18.%d.%d/32\n", i+1, i/256, i%256)
	}
	req.WriteString("\n")
	if got := roundTrip(t, c, r, req.String()); got != "errno=0\n" {
		t.Fatalf("set: %q", got)
	}
	return s.dump(t) + "errno=0\n"
}

// replyState is what the server's reply budget holds now.
func (s *testServer) replyState() (queued int64, holders int) {
	s.l.replies.mu.Lock()
	defer s.l.replies.mu.Unlock()
	return s.l.replies.queued, len(s.l.replies.holders)
}

// waitReplies polls the reply budget until cond holds (5 s at most).
func (s *testServer) waitReplies(t *testing.T, what string, cond func(queued int64, holders int) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(s.replyState()); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			q, h := s.replyState()
			t.Fatalf("%s: %d bytes queued, %d replies held", what, q, h)
		}
	}
}

// TestServerUnreadRepliesBounded: a get whose client reads nothing holds
// its reply; past MaxUnreadReplyBytes the next get waits and the stalled
// connection is cut off, instead of a second copy being built. 40 such
// clients held 40 replies (~600 MB at 50k peers).
func TestServerUnreadRepliesBounded(t *testing.T) {
	s := startServer(t, Limits{MaxUnreadReplyBytes: 256 << 10})
	s.l.replies.stall = 100 * time.Millisecond
	want := s.setPeers(t, 6000)
	if len(want) < 1<<20 {
		t.Fatalf("reply of %d bytes: too small for the test", len(want))
	}
	// A sends get=1 and reads nothing: its whole reply is held.
	a, ar := s.dial(t)
	a.(*net.UnixConn).SetReadBuffer(4096)
	io.WriteString(a, "get=1\n\n")
	s.waitReplies(t, "A's reply built", func(q int64, _ int) bool { return q > 1<<20 })
	// B's get finds the budget spent: A is cut off, B is served whole.
	b, br := s.dial(t)
	if got := roundTrip(t, b, br, "get=1\n\n"); got != want {
		t.Fatalf("reply of %d bytes, want %d", len(got), len(want))
	}
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, _ := io.ReadAll(ar); len(got) >= len(want) {
		t.Errorf("the stalled client got its whole reply (%d bytes)", len(got))
	}
	s.waitReplies(t, "all released", func(q int64, h int) bool { return q == 0 && h == 0 })
}

// TestReplyBudget: gets that find the budget spent wait, cut off a reply
// that has not moved for the stall time, are served newest first, and give
// up when their timeout fires.
func TestReplyBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newReplyBudget(10, time.Second, time.Now)
		var a *replyHolder
		var evicted atomic.Bool
		a, _ = b.start(func() {
			evicted.Store(true)
			go func() { b.sub(a, 100); b.done(a) }()
		}, nil, nil)
		b.add(a, 100)
		b.built()
		order := make(chan string, 2)
		serve := func(name string) {
			h, ok := b.start(func() {}, nil, nil)
			if !ok {
				t.Errorf("%s: start failed", name)
				return
			}
			order <- name
			b.add(h, 5)
			b.built()
			b.sub(h, 5)
			b.done(h)
		}
		go serve("older")
		synctest.Wait()
		go serve("newer")
		synctest.Wait()
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		if evicted.Load() || len(order) != 0 {
			t.Fatalf("before the stall time: evicted %v, %d served", evicted.Load(), len(order))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !evicted.Load() {
			t.Fatal("the stalled reply was not cut off")
		}
		if first, second := <-order, <-order; first != "newer" || second != "older" {
			t.Errorf("served %s then %s, want the newer first", first, second)
		}
		// Over budget with a reply that is still moving: the timeout.
		h, _ := b.start(func() { t.Error("a moving reply was cut off") }, nil, nil)
		b.add(h, 100)
		b.built()
		timeout := time.After(3 * time.Second)
		go func() {
			for range 5 {
				time.Sleep(500 * time.Millisecond)
				b.sub(h, 1)
			}
		}()
		if _, ok := b.start(func() {}, nil, timeout); ok {
			t.Error("start over the budget succeeded")
		}
		b.sub(h, 95)
		b.done(h)
		if h, ok := b.start(func() {}, nil, nil); !ok || len(b.waiters) != 0 {
			t.Fatalf("budget not usable after a timeout (%d waiting)", len(b.waiters))
		} else {
			b.built()
			b.done(h)
		}
	})
}

// TestServerSteadySlowReaderKept: a client that reads its reply slowly but
// without pause is not cut off while another get waits for the budget:
// progress was counted per 256 KiB chunk written, so a reader taking 100
// KB/s looked stalled for over a second and lost its connection mid-reply.
func TestServerSteadySlowReaderKept(t *testing.T) {
	s := startServer(t, Limits{MaxUnreadReplyBytes: 64 << 10})
	s.l.replies.stall = 600 * time.Millisecond
	want := s.setPeers(t, 3000)
	// A reads 16 KiB every 50 ms (~320 KB/s): a 256 KiB chunk takes 800
	// ms, more than the stall time, a 16 KiB slice 50 ms.
	a, _ := s.dial(t)
	a.(*net.UnixConn).SetReadBuffer(4096)
	io.WriteString(a, "get=1\n\n")
	got := make(chan []byte, 1)
	go func() {
		var all []byte
		buf := make([]byte, 16<<10)
		a.SetReadDeadline(time.Now().Add(30 * time.Second))
		for !bytes.HasSuffix(all, []byte("errno=0\n\n")) {
			n, err := io.ReadFull(a, buf[:min(len(buf), len(want)+1-len(all))])
			all = append(all, buf[:n]...)
			if err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		got <- all
	}()
	s.waitReplies(t, "A's reply built", func(q int64, _ int) bool { return q > 64<<10 })
	// B waits for the budget the whole time A reads.
	b, br := s.dial(t)
	if reply := roundTrip(t, b, br, "get=1\n\n"); reply != want {
		t.Errorf("B: reply of %d bytes, want %d", len(reply), len(want))
	}
	if all := <-got; string(all) != want+"\n" {
		t.Fatalf("A, reading slowly, got %d of %d bytes: cut off", len(all), len(want)+1)
	}
}
