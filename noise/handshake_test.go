package noise

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// pair is two identities configured as each other's peer.
type pair struct {
	a, b   *Static
	ha, hb *Handshake // ha: a's state for peer b; hb: b's state for peer a
}

func newPair(t testing.TB, pskA, pskB PresharedKey) *pair {
	t.Helper()
	r := newDetRand(1)
	ka, _ := NewPrivateKey(r)
	kb, _ := NewPrivateKey(r)
	a, b := NewStatic(ka), NewStatic(kb)
	return &pair{a: a, b: b, ha: NewHandshake(a, b.Public(), pskA), hb: NewHandshake(b, a.Public(), pskB)}
}

// handshake runs a full exchange a -> b and returns both keypairs.
func (p *pair) handshake(t testing.TB, now time.Time) (kpa, kpb *Keypair) {
	t.Helper()
	r := newDetRand(byte(now.UnixNano()))
	init, err := p.ha.CreateInitiation(nil, now, 11, r)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.b.OpenInitiation(init)
	if err != nil {
		t.Fatal(err)
	}
	if res.Remote() != p.a.Public() || res.SenderIndex() != 11 {
		t.Fatal("wrong initiator identity")
	}
	if err := p.hb.ConsumeInitiation(res, now); err != nil {
		t.Fatal(err)
	}
	resp, err := p.hb.CreateResponse(nil, now, 22, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ha.ConsumeResponse(resp, now); err != nil {
		t.Fatal(err)
	}
	if kpa, err = p.ha.DeriveKeypair(now); err != nil {
		t.Fatal(err)
	}
	if kpb, err = p.hb.DeriveKeypair(now); err != nil {
		t.Fatal(err)
	}
	return kpa, kpb
}

func TestHandshakeRoundTrip(t *testing.T) {
	p := newPair(t, PresharedKey{9}, PresharedKey{9})
	kpa, kpb := p.handshake(t, testNow)
	if kpa.LocalIndex != 11 || kpa.RemoteIndex != 22 || kpb.LocalIndex != 22 || kpb.RemoteIndex != 11 {
		t.Fatalf("indices %d/%d %d/%d", kpa.LocalIndex, kpa.RemoteIndex, kpb.LocalIndex, kpb.RemoteIndex)
	}
	if !kpa.Initiator || kpb.Initiator || !kpa.Created.Equal(testNow) {
		t.Fatal("initiator flag or creation time wrong")
	}
	for _, dir := range [][2]*Keypair{{kpa, kpb}, {kpb, kpa}} {
		buf := make([]byte, 2048)
		c, _ := dir[0].NextCounter()
		msg := dir[0].Seal(buf, c, []byte("hello, peer"), 1420)
		if len(msg) != 16+16+16 {
			t.Fatalf("sealed length %d", len(msg))
		}
		pt, ctr, err := dir[1].Open(msg[16:16], msg)
		if err != nil || ctr != c || !bytes.HasPrefix(pt, []byte("hello, peer")) || len(pt) != 16 {
			t.Fatalf("open: %v %d %q", err, ctr, pt)
		}
	}
	// The exchange state is gone after DeriveKeypair.
	if _, err := p.ha.DeriveKeypair(testNow); !errors.Is(err, ErrNoHandshake) {
		t.Fatalf("second DeriveKeypair: %v", err)
	}
	if p.ha.LocalIndex() != 0 {
		t.Fatal("LocalIndex after DeriveKeypair")
	}
}

func TestInitiationReplayAndFlood(t *testing.T) {
	p := newPair(t, PresharedKey{}, PresharedKey{})
	r := newDetRand(3)
	init, _ := p.ha.CreateInitiation(nil, testNow, 1, r)
	res, _ := p.b.OpenInitiation(init)
	if err := p.hb.ConsumeInitiation(res, testNow); err != nil {
		t.Fatal(err)
	}
	// The same initiation again: replayed timestamp.
	res, _ = p.b.OpenInitiation(init)
	if err := p.hb.ConsumeInitiation(res, testNow.Add(time.Second)); !errors.Is(err, ErrReplayedTimestamp) {
		t.Fatalf("replay: %v", err)
	}
	// A newer initiation arriving 10 ms after the last accepted one: flood.
	init2, _ := p.ha.CreateInitiation(nil, testNow.Add(time.Second), 2, r)
	res, _ = p.b.OpenInitiation(init2)
	if err := p.hb.ConsumeInitiation(res, testNow.Add(10*time.Millisecond)); !errors.Is(err, ErrFlood) {
		t.Fatalf("flood: %v", err)
	}
	// The rejected ones changed nothing: the same newer one later is accepted.
	if err := p.hb.ConsumeInitiation(res, testNow.Add(30*time.Millisecond)); err != nil {
		t.Fatalf("after flood window: %v", err)
	}
}

func TestHandshakeRejects(t *testing.T) {
	r := newDetRand(4)
	t.Run("wrong psk", func(t *testing.T) {
		p := newPair(t, PresharedKey{1}, PresharedKey{2})
		init, _ := p.ha.CreateInitiation(nil, testNow, 1, r)
		res, _ := p.b.OpenInitiation(init)
		if err := p.hb.ConsumeInitiation(res, testNow); err != nil {
			t.Fatal(err) // the psk is mixed in only in the response
		}
		resp, _ := p.hb.CreateResponse(nil, testNow, 2, r)
		if err := p.ha.ConsumeResponse(resp, testNow); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("got %v", err)
		}
		// The failed response left the initiation in flight.
		if p.ha.LocalIndex() != 1 {
			t.Fatal("forged response aborted the exchange")
		}
	})
	t.Run("unknown peer", func(t *testing.T) {
		p := newPair(t, PresharedKey{}, PresharedKey{})
		other := newPair(t, PresharedKey{}, PresharedKey{})
		init, _ := p.ha.CreateInitiation(nil, testNow, 1, r)
		res, _ := p.b.OpenInitiation(init)
		hc := NewHandshake(p.b, other.b.Public(), PresharedKey{})
		if err := hc.ConsumeInitiation(res, testNow); !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong responder", func(t *testing.T) {
		p := newPair(t, PresharedKey{}, PresharedKey{})
		init, _ := p.ha.CreateInitiation(nil, testNow, 1, r)
		if _, err := p.a.OpenInitiation(init); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad mac1 on response", func(t *testing.T) {
		p := newPair(t, PresharedKey{}, PresharedKey{})
		init, _ := p.ha.CreateInitiation(nil, testNow, 1, r)
		res, _ := p.b.OpenInitiation(init)
		_ = p.hb.ConsumeInitiation(res, testNow)
		resp, _ := p.hb.CreateResponse(nil, testNow, 2, r)
		resp[respOffMAC1] ^= 1
		if err := p.ha.ConsumeResponse(resp, testNow); !errors.Is(err, ErrInvalidMAC1) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("state", func(t *testing.T) {
		p := newPair(t, PresharedKey{}, PresharedKey{})
		if _, err := p.hb.CreateResponse(nil, testNow, 2, r); !errors.Is(err, ErrUnexpectedMessage) {
			t.Fatalf("response without initiation: %v", err)
		}
		if err := p.ha.ConsumeResponse(make([]byte, ResponseSize), testNow); !errors.Is(err, ErrBadType) {
			t.Fatalf("zero response: %v", err)
		}
		if err := p.hb.ConsumeInitiation(nil, testNow); !errors.Is(err, ErrUnexpectedMessage) {
			t.Fatalf("nil result: %v", err)
		}
	})
	t.Run("no private key", func(t *testing.T) {
		h := NewHandshake(NewStatic(PrivateKey{}), PublicKey{1}, PresharedKey{})
		if _, err := h.CreateInitiation(nil, testNow, 1, r); !errors.Is(err, ErrNoPrivateKey) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("low order peer", func(t *testing.T) {
		k, _ := NewPrivateKey(r)
		h := NewHandshake(NewStatic(k), PublicKey{}, PresharedKey{})
		if _, err := h.CreateInitiation(nil, testNow, 1, r); !errors.Is(err, ErrZeroSharedSecret) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSetLocalRecomputes(t *testing.T) {
	p := newPair(t, PresharedKey{}, PresharedKey{})
	k, _ := NewPrivateKey(newDetRand(9))
	c := NewStatic(k)
	p.ha.SetLocal(c)
	p.hb = NewHandshake(p.b, c.Public(), PresharedKey{})
	p.a = c
	p.handshake(t, testNow)
}

// TestCookieFlow: the responder under load answers with a cookie reply, the
// initiator stores the cookie and its next initiation carries a valid mac2.
func TestCookieFlow(t *testing.T) {
	p := newPair(t, PresharedKey{}, PresharedKey{})
	r := newDetRand(5)
	cc := NewCookieChecker(p.b.Public(), newDetRand(6))
	src := netip.MustParseAddrPort("198.18.0.1:51820")

	init, _ := p.ha.CreateInitiation(nil, testNow, 7, r)
	if err := cc.CheckMAC1(init); err != nil {
		t.Fatal(err)
	}
	if err := cc.CheckMAC2(init, src, testNow); !errors.Is(err, ErrInvalidMAC2) {
		t.Fatalf("mac2 before cookie: %v", err)
	}
	sender, _ := SenderIndex(init)
	reply, err := cc.CreateReply(nil, init, sender, src, testNow)
	if err != nil || len(reply) != CookieReplySize {
		t.Fatal(err)
	}
	if idx, _ := ReceiverIndex(reply); idx != 7 {
		t.Fatalf("reply receiver %d", idx)
	}
	if err := p.ha.ConsumeCookieReply(reply, testNow); err != nil {
		t.Fatal(err)
	}
	if err := p.ha.ConsumeCookieReply(reply, testNow); !errors.Is(err, ErrNoCookieRequest) {
		t.Fatalf("second reply: %v", err)
	}
	later := testNow.Add(time.Second)
	init2, _ := p.ha.CreateInitiation(nil, later, 8, r)
	if err := cc.CheckMAC2(init2, src, later); err != nil {
		t.Fatalf("mac2 with cookie: %v", err)
	}
	other := netip.MustParseAddrPort("198.18.0.2:51820")
	if err := cc.CheckMAC2(init2, other, later); !errors.Is(err, ErrInvalidMAC2) {
		t.Fatalf("mac2 from another address: %v", err)
	}
	// Past CookieRefreshTime the initiator stops sending the cookie and the
	// responder's secret has rotated.
	stale := testNow.Add(CookieRefreshTime + time.Second)
	init3, _ := p.ha.CreateInitiation(nil, stale, 9, r)
	if !bytes.Equal(init3[initOffMAC2:], make([]byte, MACSize)) {
		t.Fatal("stale cookie still used")
	}
	if err := cc.CheckMAC2(init2, src, stale); !errors.Is(err, ErrInvalidMAC2) {
		t.Fatalf("mac2 after rotation: %v", err)
	}
	// A tampered reply does not decrypt.
	reply2, _ := cc.CreateReply(nil, init3, 9, src, stale)
	reply2[40] ^= 1
	if err := p.ha.ConsumeCookieReply(reply2, stale); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered reply: %v", err)
	}
	// A wrong mac1 is rejected.
	init3[initOffMAC1] ^= 1
	if err := cc.CheckMAC1(init3); !errors.Is(err, ErrInvalidMAC1) {
		t.Fatalf("bad mac1: %v", err)
	}
}
