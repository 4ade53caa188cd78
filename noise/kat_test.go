package noise

import (
	"bytes"
	"crypto/ecdh"
	"testing"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// TestX25519KnownAnswers checks the DH path (crypto/ecdh, as dh uses it)
// against RFC 7748 §5.2 and §6.1.
func TestX25519KnownAnswers(t *testing.T) {
	cases := []struct{ scalar, point, out string }{
		{ // RFC 7748 §5.2, first vector
			"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
		},
		{ // RFC 7748 §5.2, second vector
			"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
		},
		{ // RFC 7748 §6.1: Alice's private key times Bob's public key
			"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
		},
	}
	for i, c := range cases {
		k, err := ecdh.X25519().NewPrivateKey(mustHex(t, c.scalar))
		if err != nil {
			t.Fatal(err)
		}
		got, err := dh(k, mustHex(t, c.point))
		if err != nil || !bytes.Equal(got[:], mustHex(t, c.out)) {
			t.Errorf("case %d: got %x, %v", i, got, err)
		}
	}
	// RFC 7748 §6.1 public keys, through our PrivateKey.PublicKey and NewStatic.
	alice := PrivateKey(mustHex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	want := mustHex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	if p := alice.PublicKey(); !bytes.Equal(p[:], want) {
		t.Errorf("PublicKey = %x", p)
	}
	if p := NewStatic(alice).Public(); !bytes.Equal(p[:], want) {
		t.Errorf("Static.Public = %x", p)
	}
	// A low-order point yields the zero result, which dh rejects.
	k, _ := ecdh.X25519().NewPrivateKey(alice[:])
	if _, err := dh(k, make([]byte, 32)); err != ErrZeroSharedSecret {
		t.Errorf("zero point: %v", err)
	}
}

// TestChaCha20Poly1305KnownAnswer is RFC 8439 §2.8.2 and Appendix A.5.
func TestChaCha20Poly1305KnownAnswer(t *testing.T) {
	key := mustHex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	nonce := mustHex(t, "070000004041424344454647")
	aad := mustHex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := mustHex(t, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"+
		"1ae10b594f09e26a7e902ecbd0600691")
	a, _ := chacha20poly1305.New(key)
	if got := a.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
		t.Errorf("RFC 8439 §2.8.2: got %x", got)
	}

	key = mustHex(t, "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0")
	nonce = mustHex(t, "000000000102030405060708")
	aad = mustHex(t, "f33388860000000000004e91")
	ct := mustHex(t, "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b"+
		"eead9d67890cbb22392336fea1851f38")
	a, _ = chacha20poly1305.New(key)
	got, err := a.Open(nil, nonce, ct, aad)
	if err != nil || !bytes.HasPrefix(got, []byte("Internet-Drafts are draft documents valid for a maximum of six months")) {
		t.Errorf("RFC 8439 A.5: %v %q", err, got)
	}
}

// TestBLAKE2sKnownAnswer is RFC 7693 Appendix A (BLAKE2s-256 of "abc").
func TestBLAKE2sKnownAnswer(t *testing.T) {
	got := hashOf([]byte("abc"), nil)
	want := mustHex(t, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
	if !bytes.Equal(got[:], want) {
		t.Errorf("BLAKE2s-256(abc) = %x", got)
	}
	// The keyed 128-bit MAC and HMAC agree with the library's own keyed mode
	// and with HMAC's definition: no independent vector exists for them in
	// the RFCs, so check the structure instead.
	key := bytes.Repeat([]byte{0x42}, 32)
	m := mac(key, []byte("ab"), []byte("c"))
	ref, _ := blake2s.New128(key)
	ref.Write([]byte("abc"))
	if !bytes.Equal(m[:], ref.Sum(nil)) {
		t.Errorf("mac split across parts differs")
	}
}

// TestXChaCha20Poly1305KnownAnswer is draft-irtf-cfrg-xchacha-03 Appendix A.3.1.
func TestXChaCha20Poly1305KnownAnswer(t *testing.T) {
	key := mustHex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	nonce := mustHex(t, "404142434445464748494a4b4c4d4e4f5051525354555657")
	aad := mustHex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := mustHex(t, "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"+
		"c0875924c1c7987947deafd8780acf49")
	a, _ := chacha20poly1305.NewX(key)
	if got := a.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
		t.Errorf("XChaCha A.3.1: got %x", got)
	}
}

// TestKDFStructure checks KDF1..3 against HMAC written out by hand
// (whitepaper §5.4): τ0 = HMAC(key, input), τi = HMAC(τ0, τi-1 || i).
func TestKDFStructure(t *testing.T) {
	key, in := []byte("chaining key...................."), []byte("input")
	t0 := hmacHash(key, in)
	t1 := hmacHash(t0[:], []byte{1})
	t2 := hmacHash(t0[:], append(t1[:], 2))
	t3 := hmacHash(t0[:], append(t2[:], 3))
	if k := kdf1(key, in); k != t1 {
		t.Error("kdf1")
	}
	if a, b := kdf2(key, in); a != t1 || b != t2 {
		t.Error("kdf2")
	}
	if a, b, c := kdf3(key, in); a != t1 || b != t2 || c != t3 {
		t.Error("kdf3")
	}
}
