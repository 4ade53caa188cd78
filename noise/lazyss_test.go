package noise

import (
	"testing"
	"time"
)

// TestStaticSharedIsLazy: configuring a peer computes no scalar
// multiplication; the first handshake computes ss once and later ones reuse
// it, and a new local key makes the next handshake compute it again.
func TestStaticSharedIsLazy(t *testing.T) {
	p := newPair(t, PresharedKey{}, PresharedKey{})
	if p.ha.ssDone || p.hb.ssDone {
		t.Fatal("NewHandshake computed the static-static DH")
	}
	p.handshake(t, testNow)
	if !p.ha.ssDone || !p.hb.ssDone {
		t.Fatal("a handshake left ss uncomputed")
	}
	want := p.ha.ss
	p.ha.ss[0] ^= 1 // a recomputation would repair this; a cached ss is used as is
	if _, err := p.ha.CreateInitiation(nil, testNow, 7, newDetRand(3)); err != nil {
		t.Fatal(err)
	}
	if p.ha.ss == want {
		t.Fatal("ss was recomputed although it was cached")
	}
	p.ha.SetLocal(p.a)
	if p.ha.ssDone {
		t.Fatal("SetLocal kept the old ss")
	}
	p.handshake(t, testNow.Add(time.Minute))
	if p.ha.ss != want {
		t.Fatal("ss after SetLocal differs")
	}
}

// BenchmarkNewHandshake is the per-peer cost of configuring a peer, which
// must stay far below one scalar multiplication (~50 us).
func BenchmarkNewHandshake(b *testing.B) {
	k, _ := NewPrivateKey(newDetRand(1))
	s := NewStatic(k)
	var pub PublicKey
	b.ReportAllocs()
	for b.Loop() {
		pub[0]++
		_ = NewHandshake(s, pub, PresharedKey{})
	}
}
