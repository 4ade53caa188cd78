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
func csumAdd(acc uint64, b []byte) uint64 {
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	acc = addCarry(acc, carry)
	if len(b) >= 4 {
		acc = addCarry(acc, uint64(binary.BigEndian.Uint32(b)))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc = addCarry(acc, uint64(binary.BigEndian.Uint16(b)))
		b = b[2:]
	}
	if len(b) == 1 {
		acc = addCarry(acc, uint64(b[0])<<8)
	}
	return acc
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
// destination address (4 or 16 bytes each), protocol and L4 length.
func pseudoSum(src, dst []byte, proto uint8, l4len int) uint64 {
	acc := csumAdd(0, src)
	acc = csumAdd(acc, dst)
	return addCarry(acc, uint64(proto)+uint64(l4len))
}

// ipv4HeaderChecksum computes the IPv4 header checksum of h with the
// checksum field taken as zero.
func ipv4HeaderChecksum(h []byte) uint16 {
	acc := csumAdd(0, h[:10])
	acc = csumAdd(acc, h[12:])
	return ^csumFold(acc)
}
