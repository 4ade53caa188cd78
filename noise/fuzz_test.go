package noise

import (
	"errors"
	"net/netip"
	"testing"
)

// Every parser and Consume* function gets a native fuzz target: nothing
// from the network may panic, and every reject carries a sentinel error.

// fuzzSeeds builds valid messages of each type to start the corpus from.
func fuzzSeeds(f *testing.F) (init, resp, cookie, data []byte) {
	p := newPair(f, PresharedKey{}, PresharedKey{})
	r := newDetRand(2)
	init, _ = p.ha.CreateInitiation(nil, testNow, 1, r)
	res, _ := p.b.OpenInitiation(init)
	_ = p.hb.ConsumeInitiation(res, testNow)
	resp, _ = p.hb.CreateResponse(nil, testNow, 2, r)
	cc := NewCookieChecker(p.b.Public(), r)
	cookie, _ = cc.CreateReply(nil, init, 1, netip.MustParseAddrPort("198.18.0.1:1"), testNow)
	_ = p.ha.ConsumeResponse(resp, testNow)
	kp, _ := p.ha.DeriveKeypair(testNow)
	data = kp.Seal(make([]byte, 64), 0, []byte("x"), 1420)
	return init, resp, cookie, data
}

func addSeeds(f *testing.F) {
	init, resp, cookie, data := fuzzSeeds(f)
	for _, s := range [][]byte{init, resp, cookie, data, nil, {4, 0, 0, 0}, {1, 0, 0, 1}} {
		f.Add(s)
	}
}

func FuzzMessageParsers(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		typ, err := MessageType(msg)
		if err != nil && !errors.Is(err, ErrBadLength) && !errors.Is(err, ErrBadType) {
			t.Fatalf("MessageType: %v", err)
		}
		_, _ = ReceiverIndex(msg)
		_, _ = SenderIndex(msg)
		_, c, err := ParseTransportHeader(msg)
		if err == nil && typ != TypeTransport {
			t.Fatalf("transport header accepted for type %d", typ)
		}
		_ = c
	})
}

func FuzzInitiation(f *testing.F) {
	addSeeds(f)
	p := newPair(f, PresharedKey{}, PresharedKey{})
	cc := NewCookieChecker(p.b.Public(), newDetRand(3))
	src := netip.MustParseAddrPort("[fd00::1]:51820")
	f.Fuzz(func(t *testing.T, msg []byte) {
		_ = cc.CheckMAC1(msg)
		_ = cc.CheckMAC2(msg, src, testNow)
		_, _ = cc.CreateReply(nil, msg, 1, src, testNow)
		res, err := p.b.OpenInitiation(msg)
		if err != nil {
			return
		}
		_ = p.hb.ConsumeInitiation(res, testNow)
	})
}

func FuzzConsumeResponse(f *testing.F) {
	addSeeds(f)
	p := newPair(f, PresharedKey{}, PresharedKey{})
	r := newDetRand(4)
	f.Fuzz(func(t *testing.T, msg []byte) {
		if _, err := p.ha.CreateInitiation(nil, testNow, 2, r); err != nil {
			t.Fatal(err)
		}
		if err := p.ha.ConsumeResponse(msg, testNow); err == nil {
			_, _ = p.ha.DeriveKeypair(testNow)
		}
	})
}

func FuzzConsumeCookieReply(f *testing.F) {
	addSeeds(f)
	p := newPair(f, PresharedKey{}, PresharedKey{})
	r := newDetRand(5)
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _ = p.ha.CreateInitiation(nil, testNow, 1, r)
		_ = p.ha.ConsumeCookieReply(msg, testNow)
	})
}

func FuzzOpen(f *testing.F) {
	addSeeds(f)
	p := newPair(f, PresharedKey{}, PresharedKey{})
	_, kpb := p.handshake(f, testNow)
	f.Fuzz(func(t *testing.T, msg []byte) {
		pt, c, err := kpb.Open(nil, msg)
		if err == nil {
			kpb.Replay.Accept(c)
			_ = pt
		}
	})
}
