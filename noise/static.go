package noise

import (
	"crypto/ecdh"
	cryptorand "crypto/rand"
	"fmt"
	"io"
)

// Static is the local identity of a device: its private key, public key and
// the values derived from them once. It is read-only after NewStatic and
// therefore safe for concurrent use; a key change makes a new Static.
type Static struct {
	priv PrivateKey
	pub  PublicKey
	// key is the clamped private key as a crypto/ecdh key. Keeping it avoids
	// the extra base-point multiplication that ecdh.NewPrivateKey (and with
	// it curve25519.X25519) performs on every call. nil when priv is zero.
	key *ecdh.PrivateKey
	// mac1Key = HASH("mac1----" || pub) checks mac1 of messages sent to us.
	mac1Key [hashSize]byte
	// cookieKey = HASH("cookie--" || pub) encrypts our cookie replies.
	cookieKey [hashSize]byte
}

// NewStatic derives the public key and the mac1 and cookie keys of priv. A
// zero priv gives an identity that can check nothing and refuses handshakes
// with ErrNoPrivateKey, the state of a device before a key is configured.
func NewStatic(priv PrivateKey) *Static {
	s := &Static{priv: priv}
	if !priv.IsZero() {
		// NewPrivateKey fails only on a wrong length; the key is 32 bytes.
		s.key, _ = ecdh.X25519().NewPrivateKey(priv[:])
		copy(s.pub[:], s.key.PublicKey().Bytes())
	}
	s.mac1Key = hashOf([]byte(labelMAC1), s.pub[:])
	s.cookieKey = hashOf([]byte(labelCookie), s.pub[:])
	return s
}

// Private returns the private key as it was given (not clamped).
func (s *Static) Private() PrivateKey { return s.priv }

// Public returns the public key.
func (s *Static) Public() PublicKey { return s.pub }

// dh computes X25519(priv, pub) with one scalar multiplication and rejects an
// all-zero result (a low-order public key), as the kernel and wireguard-go do.
func dh(priv *ecdh.PrivateKey, pub []byte) ([32]byte, error) {
	var out [32]byte
	if priv == nil {
		return out, ErrNoPrivateKey
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return out, ErrBadLength
	}
	shared, err := priv.ECDH(p)
	if err != nil {
		return out, ErrZeroSharedSecret
	}
	copy(out[:], shared)
	return out, nil
}

// newEphemeral reads 32 bytes from rand and makes them an X25519 key. This
// costs one scalar multiplication (the public key), which is needed anyway.
func newEphemeral(rand io.Reader) (*ecdh.PrivateKey, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	var seed [32]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRandom, err)
	}
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		return nil, ErrRandom
	}
	return k, nil
}
