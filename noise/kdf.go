package noise

import (
	"crypto/hmac"
	"crypto/subtle"
	"hash"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// hashSize is the BLAKE2s-256 output length, the size of H and C.
const hashSize = blake2s.Size

// newHash returns an unkeyed BLAKE2s-256, the HASH of whitepaper §5.4.
// blake2s.New256 fails only for keys longer than 32 bytes; nil never fails.
func newHash() hash.Hash {
	h, _ := blake2s.New256(nil)
	return h
}

// hashOf returns HASH(a || b), the form every mix-hash step takes.
func hashOf(a, b []byte) (out [hashSize]byte) {
	h := newHash()
	h.Write(a)
	h.Write(b)
	h.Sum(out[:0])
	return out
}

// mac returns MAC(key, parts...) = keyed BLAKE2s with a 16-byte output
// (whitepaper §5.4, used for mac1, mac2 and the cookie). Keys are always 32
// or 16 bytes here, which blake2s.New128 accepts.
func mac(key []byte, parts ...[]byte) (out [MACSize]byte) {
	h, err := blake2s.New128(key)
	if err != nil {
		return out // unreachable: key lengths are fixed by the callers
	}
	for _, p := range parts {
		h.Write(p)
	}
	h.Sum(out[:0])
	return out
}

// hmacHash returns HMAC-BLAKE2s-256(key, parts...), the HMAC of whitepaper §5.4.
func hmacHash(key []byte, parts ...[]byte) (out [hashSize]byte) {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	m.Sum(out[:0])
	return out
}

// kdf1 is KDF1(key, input) of whitepaper §5.4: the HKDF extract step followed
// by one expand step.
func kdf1(key, input []byte) (t1 [hashSize]byte) {
	t0 := hmacHash(key, input)
	t1 = hmacHash(t0[:], []byte{1})
	clear(t0[:])
	return t1
}

// kdf2 is KDF2(key, input): two outputs, τ2 = HMAC(τ0, τ1 || 0x2).
func kdf2(key, input []byte) (t1, t2 [hashSize]byte) {
	t0 := hmacHash(key, input)
	t1 = hmacHash(t0[:], []byte{1})
	t2 = hmacHash(t0[:], t1[:], []byte{2})
	clear(t0[:])
	return t1, t2
}

// kdf3 is KDF3(key, input): three outputs, used only for the psk step.
func kdf3(key, input []byte) (t1, t2, t3 [hashSize]byte) {
	t0 := hmacHash(key, input)
	t1 = hmacHash(t0[:], []byte{1})
	t2 = hmacHash(t0[:], t1[:], []byte{2})
	t3 = hmacHash(t0[:], t2[:], []byte{3})
	clear(t0[:])
	return t1, t2, t3
}

// aeadSeal appends AEAD(key, counter 0, plaintext, ad) to dst. The handshake
// uses each key exactly once, so the nonce is always zero (whitepaper §5.4:
// 4 zero bytes followed by the little-endian u64 counter).
func aeadSeal(dst []byte, key *[32]byte, plaintext, ad []byte) []byte {
	a, _ := chacha20poly1305.New(key[:]) // fails only for a wrong key size
	var nonce [chacha20poly1305.NonceSize]byte
	return a.Seal(dst, nonce[:], plaintext, ad)
}

// aeadOpen decrypts a handshake field sealed by aeadSeal.
func aeadOpen(dst []byte, key *[32]byte, ciphertext, ad []byte) ([]byte, error) {
	a, _ := chacha20poly1305.New(key[:])
	var nonce [chacha20poly1305.NonceSize]byte
	out, err := a.Open(dst, nonce[:], ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// constantTimeEqual compares two MACs without leaking where they differ.
func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// initialChainKey and initialHash are C0 = HASH(construction) and
// H0 = HASH(C0 || identifier) (whitepaper §5.4.2). They are computed on
// demand rather than kept in package variables, which the house style
// forbids; the cost is two BLAKE2s blocks per handshake.
func initialChainKey() [hashSize]byte {
	return hashOf([]byte(construction), nil)
}

// initialHash returns H0 for a given C0 and prologue (the identifier in
// WireGuard, a different prologue in the cacophony vector test).
func initialHash(c0 [hashSize]byte, prologue []byte) [hashSize]byte {
	return hashOf(c0[:], prologue)
}
