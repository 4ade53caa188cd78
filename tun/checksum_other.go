//go:build !amd64 || purego

package tun

const hasAVX2 = false

// csumBlocks is the hook for a vector sum; this platform has none.
func csumBlocks(b []byte) (uint64, []byte) { return 0, b }
