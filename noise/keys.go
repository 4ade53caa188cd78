package noise

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/curve25519"
)

// KeySize is the length in bytes of every WireGuard key (whitepaper §5.4).
const KeySize = 32

// PrivateKey is a Curve25519 private key. The zero value is "no key".
type PrivateKey [KeySize]byte

// PublicKey is a Curve25519 public key. The zero value is "no key".
type PublicKey [KeySize]byte

// PresharedKey is the optional symmetric key mixed in at the psk2 position.
// The zero value means "no preshared key", which WireGuard treats as 32 zero
// bytes on the wire.
type PresharedKey [KeySize]byte

// Errors returned by the key codecs.
var (
	ErrKeyEncoding = errors.New("key is not valid base64")
	ErrKeyHex      = errors.New("key is not valid hex")
	ErrKeyLength   = errors.New("key must be 32 bytes")
)

// NewPrivateKey returns a fresh, clamped private key read from r
// (crypto/rand.Reader when r is nil).
func NewPrivateKey(r io.Reader) (PrivateKey, error) {
	var k PrivateKey
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("generate private key: %w", err)
	}
	k.Clamp()
	return k, nil
}

// NewPresharedKey returns 32 random bytes from r (crypto/rand.Reader when nil).
func NewPresharedKey(r io.Reader) (PresharedKey, error) {
	var k PresharedKey
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return PresharedKey{}, fmt.Errorf("generate preshared key: %w", err)
	}
	return k, nil
}

// Clamp applies the Curve25519 clamping that `wg genkey` applies (RFC 7748 §5).
func (k *PrivateKey) Clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// PublicKey derives the public key of k. The zero private key yields the zero
// public key, as `wg` shows it.
func (k PrivateKey) PublicKey() PublicKey {
	var pub PublicKey
	if k.IsZero() {
		return pub
	}
	c := k
	c.Clamp()
	curve25519.ScalarBaseMult((*[32]byte)(&pub), (*[32]byte)(&c))
	return pub
}

// IsZero reports whether k is all zeros, in constant time.
func (k PrivateKey) IsZero() bool { return isZero(k[:]) }

// IsZero reports whether k is all zeros, in constant time.
func (k PublicKey) IsZero() bool { return isZero(k[:]) }

// IsZero reports whether k is all zeros, in constant time.
func (k PresharedKey) IsZero() bool { return isZero(k[:]) }

// Equal compares in constant time.
func (k PrivateKey) Equal(o PrivateKey) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// Equal compares in constant time.
func (k PublicKey) Equal(o PublicKey) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// Equal compares in constant time.
func (k PresharedKey) Equal(o PresharedKey) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

func isZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}

// String returns the standard base64 form used by wg and config files.
func (k PrivateKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// String returns the standard base64 form used by wg and config files.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// String returns the standard base64 form used by wg and config files.
func (k PresharedKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the lowercase hex form used by the UAPI.
func (k PrivateKey) Hex() string { return hex.EncodeToString(k[:]) }

// Hex returns the lowercase hex form used by the UAPI.
func (k PublicKey) Hex() string { return hex.EncodeToString(k[:]) }

// Hex returns the lowercase hex form used by the UAPI.
func (k PresharedKey) Hex() string { return hex.EncodeToString(k[:]) }

// ParsePrivateKey decodes a base64 private key. It does not clamp: wg keeps
// the bytes as given and clamps when it uses them.
func ParsePrivateKey(s string) (PrivateKey, error) {
	var k PrivateKey
	return k, decodeBase64(k[:], s)
}

// ParsePublicKey decodes a base64 public key.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	return k, decodeBase64(k[:], s)
}

// ParsePresharedKey decodes a base64 preshared key.
func ParsePresharedKey(s string) (PresharedKey, error) {
	var k PresharedKey
	return k, decodeBase64(k[:], s)
}

// ParsePrivateKeyHex decodes a 64-character lowercase or uppercase hex key.
func ParsePrivateKeyHex(s string) (PrivateKey, error) {
	var k PrivateKey
	return k, decodeHex(k[:], s)
}

// ParsePublicKeyHex decodes a hex public key.
func ParsePublicKeyHex(s string) (PublicKey, error) {
	var k PublicKey
	return k, decodeHex(k[:], s)
}

// ParsePresharedKeyHex decodes a hex preshared key.
func ParsePresharedKeyHex(s string) (PresharedKey, error) {
	var k PresharedKey
	return k, decodeHex(k[:], s)
}

// decodeBase64 requires exactly 44 characters of padded standard base64, as
// wg's key_from_base64 does.
func decodeBase64(dst []byte, s string) error {
	if len(s) != 44 || s[43] != '=' {
		return ErrKeyLength
	}
	var buf [KeySize + 1]byte // DecodedLen(44) is 33
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(s))
	if err != nil {
		return ErrKeyEncoding
	}
	if n != KeySize {
		return ErrKeyLength
	}
	copy(dst, buf[:KeySize])
	return nil
}

func decodeHex(dst []byte, s string) error {
	if len(s) != 2*KeySize {
		return ErrKeyLength
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return ErrKeyHex
	}
	return nil
}
