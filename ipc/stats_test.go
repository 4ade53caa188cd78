package ipc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/device"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRefusalsCountedAndLogLimited: a client looping on bad requests gets
// every one refused and counted, while the log gets one line per reason
// per interval, not one per request; the counters reach the client through
// wgd_counters=1.
func TestRefusalsCountedAndLogLimited(t *testing.T) {
	dir := t.TempDir()
	now := time.Now() // also the connections' deadlines: keep it near the real time
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	l, err := ListenConfig{Dir: dir, Now: clock}.Listen("wgds0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var logs syncBuffer
	dev := &countingDevice{fakeDevice: newFakeDevice(), snap: device.CountersSnapshot{Replay: 1}}
	go l.Serve(context.Background(), dev, slog.New(slog.NewTextHandler(&logs, nil)))

	c, err := net.Dial("unix", filepath.Join(dir, "wgds0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	const bad = 200
	for i := range bad {
		req := "set=1\nlisten_port=1\nbogus_key=1\n\n"
		if i%2 == 1 {
			req = "set=1\nlisten_port=99999\n\n"
		}
		if reply := roundTrip(t, c, r, req); reply != "errno=-22\n" {
			t.Fatalf("request %d: reply %q, want errno=-22", i, reply)
		}
	}
	if n := strings.Count(logs.String(), "operation failed"); n != 1 {
		t.Fatalf("%d log lines for %d refused sets at one instant, want 1:\n%s", n, bad, logs.String())
	}
	if dev.appliedCount() != 0 {
		t.Fatalf("a refused set reached the device")
	}
	// Past the interval the next refusal is logged again and says how
	// many were held back.
	clockMu.Lock()
	now = now.Add(10 * time.Second)
	clockMu.Unlock()
	roundTrip(t, c, r, "set=1\nbogus=1\n\n")
	if !strings.Contains(logs.String(), fmt.Sprintf("suppressed=%d", bad-1)) {
		t.Fatalf("second line does not count the held-back ones:\n%s", logs.String())
	}

	// An unknown operation closes the connection and is counted too.
	c2, err := net.Dial("unix", filepath.Join(dir, "wgds0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	c2.Write([]byte("hello=1\n\n"))
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _ := c2.Read(make([]byte, 16)); n != 0 {
		t.Fatalf("unknown operation answered with %d bytes, want the connection closed", n)
	}
	c2.Close()
	// So does "set=1\r\n": wireguard-go matches the operation line exactly.
	c3, err := net.Dial("unix", filepath.Join(dir, "wgds0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	c3.Write([]byte("set=1\r\nlisten_port=1\n\n"))
	c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _ := c3.Read(make([]byte, 16)); n != 0 {
		t.Fatalf("set=1\\r answered with %d bytes, want the connection closed", n)
	}
	c3.Close()
	// A refused set longer than the reader's buffer is still counted and
	// logged as a set: the operation's name is not read back from a buffer
	// the request has overwritten.
	clockMu.Lock()
	now = now.Add(10 * time.Second)
	clockMu.Unlock()
	var big strings.Builder
	big.WriteString("set=1\n")
	for i := range 2000 {
		fmt.Fprintf(&big, "public_key=%064x\n", i+1)
	}
	big.WriteString("bogus=1\n\n")
	if reply := roundTrip(t, c, r, big.String()); reply != "errno=-22\n" {
		t.Fatalf("big refused set: reply %q", reply)
	}
	if tail := logs.String()[strings.LastIndex(logs.String(), "operation failed"):]; !strings.Contains(tail, `op="set=1"`) {
		t.Fatalf("big refused set logged as %q", tail)
	}

	cl, err := DialPath(filepath.Join(dir, "wgds0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := cl.Counters()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{SetRejected: bad + 2, BadOperation: 2}
	if got.Stats != want || got.Replay != 1 {
		t.Fatalf("counters %+v, want %+v and replay=1", got, want)
	}
}
