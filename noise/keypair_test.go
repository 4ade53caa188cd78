package noise

import (
	"bytes"
	"errors"
	"testing"
)

func TestPaddedLen(t *testing.T) {
	cases := []struct{ n, mtu, want int }{
		{0, 1420, 0}, {1, 1420, 16}, {16, 1420, 16}, {17, 1420, 32},
		{1419, 1420, 1420}, {1420, 1420, 1420}, {1410, 1412, 1412},
		{1500, 1420, 1500}, {5, 0, 16}, {5, 3, 5},
	}
	for _, c := range cases {
		if got := PaddedLen(c.n, c.mtu); got != c.want {
			t.Errorf("PaddedLen(%d, %d) = %d, want %d", c.n, c.mtu, got, c.want)
		}
	}
}

func TestSealOpenInPlace(t *testing.T) {
	p := newPair(t, PresharedKey{}, PresharedKey{})
	kpa, kpb := p.handshake(t, testNow)
	for _, n := range []int{0, 1, 15, 16, 100, 1420} {
		buf := make([]byte, TransportHeaderSize+1420+TagSize)
		pt := buf[TransportHeaderSize : TransportHeaderSize+n]
		for i := range pt {
			pt[i] = byte(i)
		}
		want := bytes.Clone(pt)
		c, _ := kpa.NextCounter()
		msg := kpa.Seal(buf, c, pt, 1420)
		if len(msg) != SealedLen(n, 1420) {
			t.Fatalf("n=%d: len %d", n, len(msg))
		}
		if _, rc, _ := ParseTransportHeader(msg); rc != c {
			t.Fatal("counter not in header")
		}
		got, ctr, err := kpb.Open(msg[TransportHeaderSize:TransportHeaderSize], msg)
		if err != nil || ctr != c || !bytes.Equal(got[:n], want) || len(got) != PaddedLen(n, 1420) {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got[n:], make([]byte, len(got)-n)) {
			t.Fatal("padding not zero")
		}
		if idx, _ := ReceiverIndex(msg); idx != kpb.LocalIndex {
			t.Fatal("Open did not restore the receiver index")
		}
		if !kpb.Replay.Accept(ctr) || kpb.Replay.Accept(ctr) {
			t.Fatal("replay filter")
		}
	}
}

func TestOpenRejects(t *testing.T) {
	p := newPair(t, PresharedKey{}, PresharedKey{})
	kpa, kpb := p.handshake(t, testNow)
	msg := kpa.Seal(make([]byte, 64), 0, []byte("hi"), 1420)
	bad := bytes.Clone(msg)
	bad[20] ^= 1
	if _, _, err := kpb.Open(nil, bad); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered: %v", err)
	}
	if _, _, err := kpa.Open(nil, msg); !errors.Is(err, ErrWrongIndex) {
		t.Errorf("wrong keypair: %v", err)
	}
	if _, _, err := kpb.Open(nil, msg[:31]); !errors.Is(err, ErrBadLength) {
		t.Errorf("short: %v", err)
	}
	limit := kpa.Seal(make([]byte, 64), RejectAfterMessages, nil, 0)
	if _, _, err := kpb.Open(nil, limit); !errors.Is(err, ErrReplay) {
		t.Errorf("counter limit: %v", err)
	}
	if kpa.Seal(make([]byte, 0, 10), 1, []byte("hi"), 1420) != nil {
		t.Error("Seal into a short buffer")
	}
	kpb.Zero()
	if _, _, err := kpb.Open(nil, msg); !errors.Is(err, ErrDecrypt) {
		t.Errorf("after Zero: %v", err)
	}
	kpa.Zero()
	if kpa.Seal(make([]byte, 64), 1, nil, 0) != nil {
		t.Error("Seal after Zero")
	}
}

func TestNextCounterLimit(t *testing.T) {
	var kp Keypair
	kp.sendCounter.Store(RejectAfterMessages - 1)
	if c, ok := kp.NextCounter(); !ok || c != RejectAfterMessages-1 {
		t.Fatalf("last counter: %d %v", c, ok)
	}
	for range 3 {
		if _, ok := kp.NextCounter(); ok {
			t.Fatal("counter past RejectAfterMessages")
		}
	}
	if kp.SendCount() != RejectAfterMessages {
		t.Fatalf("SendCount %d", kp.SendCount())
	}
}

func TestSealOpenAllocs(t *testing.T) {
	p := newPair(t, PresharedKey{}, PresharedKey{})
	kpa, kpb := p.handshake(t, testNow)
	buf := make([]byte, 1500)
	allocs := testing.AllocsPerRun(100, func() {
		c, _ := kpa.NextCounter()
		msg := kpa.Seal(buf, c, buf[TransportHeaderSize:TransportHeaderSize+1420], 1420)
		if _, _, err := kpb.Open(msg[TransportHeaderSize:TransportHeaderSize], msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Seal+Open", allocs)
	}
}

func TestMessageType(t *testing.T) {
	cases := []struct {
		msg []byte
		typ uint32
		err error
	}{
		{nil, 0, ErrBadLength},
		{make([]byte, InitiationSize), 0, ErrBadType},
		{append([]byte{1, 0, 0, 0}, make([]byte, InitiationSize-4)...), TypeInitiation, nil},
		{append([]byte{1, 0, 0, 0}, make([]byte, InitiationSize-3)...), 0, ErrBadLength},
		{append([]byte{1, 0, 1, 0}, make([]byte, InitiationSize-4)...), 0, ErrBadType},
		{append([]byte{2, 0, 0, 0}, make([]byte, ResponseSize-4)...), TypeResponse, nil},
		{append([]byte{3, 0, 0, 0}, make([]byte, CookieReplySize-4)...), TypeCookieReply, nil},
		{append([]byte{4, 0, 0, 0}, make([]byte, KeepaliveSize-4)...), TypeTransport, nil},
		{append([]byte{4, 0, 0, 0}, make([]byte, KeepaliveSize-5)...), 0, ErrBadLength},
		{append([]byte{4, 0, 0, 0}, make([]byte, 41)...), TypeTransport, nil},
	}
	for i, c := range cases {
		typ, err := MessageType(c.msg)
		if typ != c.typ || !errors.Is(err, c.err) {
			t.Errorf("case %d: got %d %v, want %d %v", i, typ, err, c.typ, c.err)
		}
	}
}
