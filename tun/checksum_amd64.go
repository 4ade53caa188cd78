//go:build !purego

package tun

import "golang.org/x/sys/cpu"

// hasAVX2 is read once at start-up; csumBlocks uses the vector sum only
// where the CPU has it.
var hasAVX2 = cpu.X86.HasAVX2

// csumWideMin is the shortest slice worth the vector loop's set-up.
const csumWideMin = 256

// csumChunk bounds one csumAVX2 call so that its 32-bit lanes cannot
// overflow (see checksum_amd64.s).
const csumChunk = 1 << 20

//go:noescape
func csumAVX2(p *byte, n int) uint64

// csumBlocks sums the leading multiple of 64 bytes of b with AVX2 and
// returns that sum (of little-endian 16-bit words, as csumAdd's own loop
// does) and the bytes left over. Without AVX2, or for a short b, it sums
// nothing.
func csumBlocks(b []byte) (uint64, []byte) {
	if !hasAVX2 || len(b) < csumWideMin {
		return 0, b
	}
	var s uint64
	for len(b) >= 64 {
		n := min(len(b)&^63, csumChunk)
		s += csumAVX2(&b[0], n) // < 2^36 per chunk: no overflow for any slice
		b = b[n:]
	}
	return s, b
}
