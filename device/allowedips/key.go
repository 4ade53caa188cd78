package allowedips

import (
	"encoding/binary"
	"net/netip"
)

// key is an address as a 128-bit big-endian integer. IPv4 addresses occupy
// the top 32 bits of hi so that octet 0 is always the first byte on the
// wire; both families then share one trie walk.
type key struct {
	hi, lo uint64
}

// keyOf converts a to a key. It ignores zones: WireGuard routes on the
// address alone.
func keyOf(a netip.Addr) key {
	if a.Is4() {
		b := a.As4()
		return key{hi: uint64(binary.BigEndian.Uint32(b[:])) << 32}
	}
	b := a.As16()
	return key{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// addr converts k back to an address of the given family.
func (k key) addr(v6 bool) netip.Addr {
	if !v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.hi>>32))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

// octet returns byte i (0 = most significant) of k, the index used at trie
// depth i.
func (k key) octet(i int) byte {
	if i < 8 {
		return byte(k.hi >> (56 - 8*i))
	}
	return byte(k.lo >> (56 - 8*(i-8)))
}

// masked clears every bit of k after the first bits, as wg does with the
// host part of an allowed IP.
func (k key) masked(bits int) key {
	switch {
	case bits <= 0:
		return key{}
	case bits <= 64:
		return key{hi: k.hi &^ (^uint64(0) >> bits)}
	case bits < 128:
		return key{hi: k.hi, lo: k.lo &^ (^uint64(0) >> (bits - 64))}
	}
	return k
}

// hasPrefix reports whether the first bits of k equal those of p, which
// must already be masked.
func (k key) hasPrefix(p key, bits int) bool {
	return k.masked(bits) == p
}
