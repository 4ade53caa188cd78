package noise

// Replay window geometry, as in the kernel's counter.c (RFC 6479): a ring of
// 8192 bits of which one 64-bit word is always being recycled, so 8128
// counters behind the highest one are tracked exactly.
const (
	replayWordBits   = 64
	replayBitsTotal  = 8192
	replayWords      = replayBitsTotal / replayWordBits
	replayWindowSize = replayBitsTotal - replayWordBits // 8128
)

// ReplayFilter is the receive-side sliding window of one keypair. The zero
// value is an empty window that accepts counter 0. It is not safe for
// concurrent use: the device serializes Accept per keypair, after Open
// authenticated the message (so only genuine counters move the window).
type ReplayFilter struct {
	last   uint64 // one more than the highest accepted counter, 0 if none
	bitmap [replayWords]uint64
}

// Reset empties the window.
func (f *ReplayFilter) Reset() {
	*f = ReplayFilter{}
}

// Accept records counter and reports whether it is new. It returns false when
// the counter was seen before, is more than 8128 behind the highest one, or
// is at or beyond RejectAfterMessages (whitepaper §5.4.6 and §6.1).
func (f *ReplayFilter) Accept(counter uint64) bool {
	if counter >= RejectAfterMessages {
		return false
	}
	// Work with counter+1 so that last == 0 can mean "nothing yet" and
	// counter 0 still fits; this is the kernel's ++their_counter.
	c := counter + 1
	if c+replayWindowSize < f.last {
		return false // too old
	}
	word := c / replayWordBits
	if c > f.last {
		cur := f.last / replayWordBits
		n := min(word-cur, replayWords)
		for i := uint64(1); i <= n; i++ {
			f.bitmap[(cur+i)%replayWords] = 0
		}
		f.last = c
	}
	idx := word % replayWords
	bit := uint64(1) << (c % replayWordBits)
	if f.bitmap[idx]&bit != 0 {
		return false
	}
	f.bitmap[idx] |= bit
	return true
}
