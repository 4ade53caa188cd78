package device

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/noise"
)

// logBuffer is a goroutine-safe log sink for tests.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// peerFor returns d's peer with public key pub.
func (d *Device) peerFor(pub noise.PublicKey) *Peer {
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	return d.peers[pub]
}

func debugLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestLogsSayWhatHappened: at debug level (LOG_LEVEL=verbose) the log shows
// the handshake as it goes and, rate-limited, why packets were dropped: a
// wrong preshared key fails the handshake, and a packet to a prefix no
// peer has is dropped for want of a route.
func TestLogsSayWhatHappened(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	var la, lb logBuffer
	a := newTestNodeOpts(t, clock, 1, Options{Workers: -1, Logger: debugLogger(&la)})
	b := newTestNodeOpts(t, clock, 2, Options{Workers: -1, Logger: debugLogger(&lb)})
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("hello")))
	waitLog := func(what string, buf *logBuffer, want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := buf.String()
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: log lacks %q:\n%s", what, want, s)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLog("initiator", &la, "sending handshake initiation", "received handshake response, session up", "peer="+a.dev.peerFor(b.pub).short())
	waitLog("responder", &lb, "received handshake initiation, sending response")

	// A packet to an address no peer's AllowedIPs cover.
	a.write(t, udp4(a.addr, netip.MustParseAddr("198.18.77.1"), []byte("nowhere")))
	waitLog("no route", &la, `reason="no route"`, "dst=198.18.77.1")

	// An inner packet whose IPv4 total length claims more than arrived:
	// dropped, and the line says what was wrong with it.
	bad := udp4(a.addr, b.addr, []byte("short"))
	bad[2], bad[3] = 0x10, 0x00
	a.write(t, bad)
	waitLog("bad inner packet", &lb, `reason="bad inner packet"`, "version=4", "header_len=4096", "len=48")

	// b uses a preshared key a does not: the PSK enters the handshake in
	// the response (Noise IKpsk2), so a's check of b's response fails.
	var psk noise.PresharedKey
	psk[0] = 1
	if err := b.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: a.pub, UpdateOnly: true, PresharedKey: &psk}}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(noise.RekeyTimeout + time.Second)
	a.dev.hs.requestInitiation(a.dev.peerFor(b.pub), false)
	waitLog("wrong preshared key", &la, `reason="handshake failed"`, `message="handshake response"`)
}

// TestHandshakeGivesUp: with no answer, the initiation is retried every
// REKEY_TIMEOUT until REKEY_ATTEMPT_TIME, 20 in all as in the kernel and
// wireguard-go, then the device stops and says so.
func TestHandshakeGivesUp(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	var la logBuffer
	a := newTestNodeOpts(t, clock, 1, Options{Workers: -1, Logger: debugLogger(&la)})
	b := newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	// b no longer knows a: it answers nothing.
	if err := b.dev.Apply(&Config{Peers: []PeerConfig{{PublicKey: a.pub, Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	sent := func() int { return strings.Count(la.String(), "sending handshake initiation") }
	a.write(t, udp4(a.addr, b.addr, []byte("never answered")))
	waitFor(t, "the first initiation", func() bool { return sent() == 1 })
	for i := 0; i < 30 && !strings.Contains(la.String(), "giving up"); i++ {
		before := sent()
		clock.Advance(noise.RekeyTimeout + noise.RekeyTimeout/3) // past the jitter
		a.dev.loop.poll.wake()
		deadline := time.Now().Add(5 * time.Second)
		for sent() == before && !strings.Contains(la.String(), "giving up") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !strings.Contains(la.String(), "giving up") {
		t.Fatalf("no give-up after %d initiations:\n%s", sent(), la.String())
	}
	if n := sent(); n != 20 {
		t.Errorf("%d initiations before giving up, want 20", n)
	}
	if !strings.Contains(la.String(), "attempts=20") {
		t.Errorf("give-up line does not count 20 attempts:\n%s", la.String())
	}
}

// TestEveryDropReasonLogged: hostile datagrams of each kind, many of
// them, leave one rate-limited debug line per reason (with the sender), as
// docs/usage.md promises; the log had none for most of them.
func TestEveryDropReasonLogged(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	var lb logBuffer
	a := newTestNode(t, clock, 1)
	b := newTestNodeOpts(t, clock, 2, Options{Workers: -1, Logger: debugLogger(&lb)})
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("session up")))

	attacker, target := newAttacker(t, b)
	data := make([]byte, noise.KeepaliveSize) // type 4, receiver index 0
	data[0] = noise.TypeTransport
	response := make([]byte, noise.ResponseSize) // an index b never gave
	response[0] = noise.TypeResponse
	kinds := map[string][]byte{
		`reason="bad type"`:      {9, 0, 0, 0, 1, 2, 3},
		`reason="bad length"`:    append([]byte{noise.TypeInitiation, 0, 0, 0}, make([]byte, 20)...),
		`reason="unknown index"`: data,
		`reason="invalid mac1"`:  response,
	}
	for range 50 {
		for _, msg := range kinds {
			if _, err := attacker.WriteToUDPAddrPort(msg, target); err != nil {
				t.Fatal(err)
			}
		}
	}
	from := "from=" + attacker.LocalAddr().String()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := lb.String()
		missing := ""
		for want := range kinds {
			if strings.Count(s, want) != 1 {
				missing = want
			}
		}
		if missing == "" && strings.Contains(s, from) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want one line for %s, from %s:\n%s", missing, from, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
