package tun

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) as the offload code needs it: a running
// one's-complement sum that can be seeded, so that the pseudo-header, the L4
// header and the payload can be summed from separate slices, and a fold to
// 16 bits at the end.

// csumAdd adds b to the running one's-complement sum acc and returns the new
// sum, not yet folded. b is read as big-endian 16-bit words; an odd last
// byte is padded with zero, so only the last slice of a sum may be odd.
//
// The words are summed as they lie in memory (little-endian loads, no byte
// swap per load) and the folded sum is swapped once at the end: a
// one's-complement sum does not depend on byte order (RFC 1071 2.B).
//
// Where the CPU has AVX2, the bulk of a long slice is summed 64 bytes at a
// time in vector lanes (csumBlocks, checksum_amd64.s) and only the tail
// here.
func csumAdd(acc uint64, b []byte) uint64 {
	s, rest := csumBlocks(b)
	return csumScalar(acc, s, rest)
}

// csumScalar is csumAdd without the vector part: it adds b to the partial
// sum s (of little-endian words, as csumBlocks returns it), folds, and adds
// the result to acc.
func csumScalar(acc, s uint64, b []byte) uint64 {
	var carry uint64
	for len(b) >= 64 {
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[0:]), carry)
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), carry)
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), carry)
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), carry)
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[32:]), carry)
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[40:]), carry)
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[48:]), carry)
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b[56:]), carry)
		b = b[64:]
	}
	for len(b) >= 8 {
		s, carry = bits.Add64(s, binary.LittleEndian.Uint64(b), carry)
		b = b[8:]
	}
	s = addCarry(s, carry)
	if len(b) >= 4 {
		s = addCarry(s, uint64(binary.LittleEndian.Uint32(b)))
		b = b[4:]
	}
	if len(b) >= 2 {
		s = addCarry(s, uint64(binary.LittleEndian.Uint16(b)))
		b = b[2:]
	}
	if len(b) == 1 {
		s = addCarry(s, uint64(b[0])) // the first byte of a little-endian word
	}
	return addCarry(acc, uint64(bits.ReverseBytes16(csumFold(s))))
}

// addCarry adds v to acc with end-around carry, which is what makes a
// 64-bit accumulator a valid one's-complement sum. The result cannot
// overflow again: with a carry, the sum is below v.
func addCarry(acc, v uint64) uint64 {
	s, c := bits.Add64(acc, v, 0)
	return s + c
}

// csumFold folds a running sum to 16 bits (not complemented).
func csumFold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// pseudoSum returns the running sum of the TCP/UDP pseudo-header: source and
// destination address (4 or 16 bytes each), protocol and L4 length. The
// addresses are summed as 32-bit little-endian loads and folded once (the
// segmentation path calls this per segment, where two csumAdd calls and
// their folds cost more than the sum).
func pseudoSum(src, dst []byte, proto uint8, l4len int) uint64 {
	var s uint64
	for i := 0; i+4 <= len(src) && i+4 <= len(dst); i += 4 {
		s += uint64(binary.LittleEndian.Uint32(src[i:])) + uint64(binary.LittleEndian.Uint32(dst[i:]))
	}
	return uint64(bits.ReverseBytes16(csumFold(s))) + uint64(proto) + uint64(l4len)
}

// ipv4HeaderChecksum computes the IPv4 header checksum of h (a whole
// header: 20 to 60 bytes, a multiple of 4) with the checksum field taken as
// zero.
func ipv4HeaderChecksum(h []byte) uint16 {
	s := ipv4HeaderSum(h) - uint64(binary.LittleEndian.Uint16(h[10:]))<<16
	return ^bits.ReverseBytes16(csumFold(s))
}

// ipv4HeaderSum sums an IPv4 header as 32-bit little-endian loads, not
// folded; a header whose checksum is right folds to 0xffff.
func ipv4HeaderSum(h []byte) uint64 {
	var s uint64
	for i := 0; i+4 <= len(h); i += 4 {
		s += uint64(binary.LittleEndian.Uint32(h[i:]))
	}
	return s
}
