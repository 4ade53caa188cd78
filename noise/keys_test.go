package noise

import (
	"errors"
	"testing"
)

func TestKeyCodecs(t *testing.T) {
	k, err := NewPrivateKey(newDetRand(1))
	if err != nil {
		t.Fatal(err)
	}
	if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
		t.Fatal("not clamped")
	}
	if got, err := ParsePrivateKey(k.String()); err != nil || got != k {
		t.Fatalf("base64 round trip: %v", err)
	}
	if got, err := ParsePrivateKeyHex(k.Hex()); err != nil || got != k {
		t.Fatalf("hex round trip: %v", err)
	}
	pub := k.PublicKey()
	if got, err := ParsePublicKey(pub.String()); err != nil || got != pub {
		t.Fatalf("public round trip: %v", err)
	}
	if !(PrivateKey{}).PublicKey().IsZero() || !(PresharedKey{}).IsZero() || pub.IsZero() {
		t.Fatal("IsZero")
	}
	if !pub.Equal(pub) || pub.Equal(PublicKey{}) {
		t.Fatal("Equal")
	}
	for _, bad := range []string{"", "abc", k.String()[:43] + "A", "!" + k.String()[1:]} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := ParsePresharedKeyHex(k.Hex()[:62] + "zz"); !errors.Is(err, ErrKeyHex) {
		t.Errorf("bad hex: %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	k, _ := NewPrivateKey(newDetRand(2))
	f.Add(k.String())
	f.Add(k.Hex())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := ParsePublicKey(s); err == nil && k.String() != s {
			t.Fatalf("base64 %q re-encodes as %q", s, k.String())
		}
		if k, err := ParsePresharedKeyHex(s); err == nil && len(k.Hex()) != 64 {
			t.Fatal("hex length")
		}
		_, _ = ParsePrivateKey(s)
	})
}
