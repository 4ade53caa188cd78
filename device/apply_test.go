package device

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wgdvpn/wgd/noise"
)

// owner returns the public key of the peer whose allowed IPs hold address a
// and whether one does.
func owner(d *Device, a string) (noise.PublicKey, bool) {
	p, ok := d.allowedIPs.Lookup(netip.MustParseAddr(a))
	if !ok {
		return noise.PublicKey{}, false
	}
	return p.public, true
}

func newKey(t *testing.T) noise.PrivateKey {
	t.Helper()
	k, err := noise.NewPrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestApplySequelMovesThenTakesAway: a flag after allowed IPs of the same
// section (a sequel entry) acts after them, as wireguard-go's line-by-line
// apply: the prefix moves to the section's peer first, so its old owner
// loses it even though the new one drops it again.
func TestApplySequelMovesThenTakesAway(t *testing.T) {
	n := newTestNode(t, newFakeClock(), 1)
	d := n.dev
	a, b := newKey(t).PublicKey(), newKey(t).PublicKey()
	x := AllowedIPChange{Prefix: netip.MustParsePrefix("198.18.7.0/24")}
	if err := d.Apply(&Config{Peers: []PeerConfig{{PublicKey: b, AllowedIPs: []AllowedIPChange{x}}}}); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []PeerConfig{
		{PublicKey: a, Sequel: true, ReplaceAllowedIPs: true},
		{PublicKey: a, Sequel: true, Remove: true},
		{PublicKey: a, Sequel: true, UpdateOnly: true}, // a did not exist: its section created it
	} {
		if err := d.Apply(&Config{Peers: []PeerConfig{{PublicKey: b, AllowedIPs: []AllowedIPChange{x}}}}); err != nil {
			t.Fatal(err)
		}
		if who, _ := owner(d, "198.18.7.1"); who != b {
			t.Fatalf("setup: prefix not owned by b")
		}
		err := d.Apply(&Config{Peers: []PeerConfig{{PublicKey: a, AllowedIPs: []AllowedIPChange{x}}, flag}})
		if err != nil {
			t.Fatal(err)
		}
		if who, ok := owner(d, "198.18.7.1"); ok {
			t.Errorf("%+v: prefix still owned by %v; want taken from b and dropped", flag, who)
		}
		d.peersMu.RLock()
		_, aExists := d.peers[a]
		d.peersMu.RUnlock()
		if want := flag.ReplaceAllowedIPs; aExists != want {
			t.Errorf("%+v: peer a exists = %v, want %v", flag, aExists, want)
		}
		if err := d.Apply(&Config{Peers: []PeerConfig{{PublicKey: a, Remove: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	// update_only on a peer that existed before its section is a no-op:
	// the lines after it apply.
	if err := d.Apply(&Config{Peers: []PeerConfig{{PublicKey: a}}}); err != nil {
		t.Fatal(err)
	}
	y := AllowedIPChange{Prefix: netip.MustParsePrefix("198.18.8.0/24")}
	if err := d.Apply(&Config{Peers: []PeerConfig{{PublicKey: a, AllowedIPs: []AllowedIPChange{x}},
		{PublicKey: a, Sequel: true, UpdateOnly: true, AllowedIPs: []AllowedIPChange{y}}}}); err != nil {
		t.Fatal(err)
	}
	if who, _ := owner(d, "198.18.8.1"); who != a {
		t.Errorf("update_only sequel on an existing peer: later allowed IP not applied")
	}
}

// TestApplyReplacedPrivateKeys: every private key of a transaction removes
// the peer with its public key, as wireguard-go sets them line by line;
// only the last one becomes the identity.
func TestApplyReplacedPrivateKeys(t *testing.T) {
	n := newTestNode(t, newFakeClock(), 1)
	d := n.dev
	mid, last := newKey(t), newKey(t)
	other := newKey(t).PublicKey()
	peers := []PeerConfig{{PublicKey: mid.PublicKey()}, {PublicKey: last.PublicKey()}, {PublicKey: other}}
	if err := d.Apply(&Config{Peers: peers}); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(&Config{ReplacedPrivateKeys: []noise.PrivateKey{mid}, PrivateKey: &last}); err != nil {
		t.Fatal(err)
	}
	d.peersMu.RLock()
	_, hasMid := d.peers[mid.PublicKey()]
	_, hasLast := d.peers[last.PublicKey()]
	_, hasOther := d.peers[other]
	d.peersMu.RUnlock()
	if hasMid || hasLast || !hasOther {
		t.Errorf("peers after the keys: mid %v, last %v, other %v; want only other", hasMid, hasLast, hasOther)
	}
	if s := d.static.Load(); s == nil || !s.Private().Equal(last) {
		t.Errorf("identity is not the last key")
	}
	// A peer with the device's own key is ignored.
	if err := d.Apply(&Config{Peers: []PeerConfig{{PublicKey: last.PublicKey()}}}); err != nil {
		t.Fatal(err)
	}
	d.peersMu.RLock()
	_, hasLast = d.peers[last.PublicKey()]
	d.peersMu.RUnlock()
	if hasLast {
		t.Errorf("a peer with our own public key was created")
	}
}

// TestNewPrivateKeyHandshakesAtOnce: after the private key changes, the
// next packet starts a handshake under the new identity at once, even
// when the last one went out less than REKEY_TIMEOUT ago (the injected
// clock does not move here, so waiting for the retry timer would hang).
func TestNewPrivateKeyHandshakesAtOnce(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("before")))

	fresh := newKey(t)
	if err := a.dev.Apply(&Config{PrivateKey: &fresh}); err != nil {
		t.Fatal(err)
	}
	a.pub = fresh.PublicKey()
	if err := b.dev.Apply(&Config{ReplacePeers: true}); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b, lo4, 0) // b learns a's new key; a's side is unchanged
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("after the new key")))
	if c := a.dev.Counters(); c.HandshakesDone != 2 {
		t.Errorf("a: %d handshakes completed, want 2", c.HandshakesDone)
	}
}

// TestNewPrivateKeyStillReceives: a new private key stops the old sessions
// from sending but not from receiving, as in wireguard-go and the kernel
// module: the peer, which does not know the new key yet, still gets its
// packets through, and our next packet asks for a handshake under the new
// identity instead of going out on the old session.
func TestNewPrivateKeyStillReceives(t *testing.T) {
	checkNoGoroutineLeak(t)
	clock := newFakeClock()
	a, b := newTestNode(t, clock, 1), newTestNode(t, clock, 2)
	connect(t, a, b, lo4, 0)
	exchange(t, a, b, udp4(a.addr, b.addr, []byte("before")))
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("before, back")))

	fresh := newKey(t)
	if err := a.dev.Apply(&Config{PrivateKey: &fresh}); err != nil {
		t.Fatal(err)
	}
	exchange(t, b, a, udp4(b.addr, a.addr, []byte("on the old session")))
	a.write(t, udp4(a.addr, b.addr, []byte("not on the old session")))
	if got := b.read(t, 300*time.Millisecond); got != nil {
		t.Fatalf("b got %x: a sealed on a session of its old identity", got)
	}
	// b cannot place an initiation from a key it does not know.
	for deadline := time.Now().Add(5 * time.Second); b.dev.Counters().UnknownPeer == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a sent no initiation under its new key: b %+v", b.dev.Counters())
		}
	}
}
