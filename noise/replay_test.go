package noise

import "testing"

// TestReplayFilter runs the numbered cases of the kernel's counter selftest
// (drivers/net/wireguard/selftest/counter.c), including the
// RejectAfterMessages edge, so a failure names the case number.
func TestReplayFilter(t *testing.T) {
	var f ReplayFilter
	n := 0
	tc := func(counter uint64, want bool) {
		t.Helper()
		n++
		if got := f.Accept(counter); got != want {
			t.Errorf("case %d: Accept(%d) = %v, want %v", n, counter, got, want)
		}
	}
	const lim = replayWindowSize + 1
	const rej = RejectAfterMessages
	tc(0, true)
	tc(1, true)
	tc(1, false)
	tc(9, true)
	tc(8, true)
	tc(7, true)
	tc(7, false)
	tc(lim, true)
	tc(lim-1, true)
	tc(lim-1, false)
	tc(lim-2, true)
	tc(2, true)
	tc(2, false)
	tc(lim+16, true)
	tc(3, false)
	tc(lim+16, false)
	tc(lim*4, true)
	tc(lim*4-(lim-1), true)
	tc(10, false)
	tc(lim*4-lim, false)
	tc(lim*4-(lim+1), false)
	tc(lim*4-(lim-2), true)
	tc(lim*4+1-lim, false)
	tc(0, false)
	tc(rej, false)
	tc(rej-1, true)
	tc(rej, false)
	tc(rej-1, false)
	tc(rej-2, true)
	tc(rej+1, false)
	tc(rej+2, false)
	tc(rej-2, false)
	tc(rej-3, true)
	tc(0, false)

	f.Reset()
	for i := uint64(1); i <= replayWindowSize; i++ {
		tc(i, true)
	}
	tc(0, true)
	tc(0, false)

	f.Reset()
	for i := uint64(2); i <= replayWindowSize+1; i++ {
		tc(i, true)
	}
	tc(1, true)
	tc(0, false)

	f.Reset()
	for i := uint64(replayWindowSize + 1); i > 0; i-- {
		tc(i-1, true)
	}

	f.Reset()
	for i := uint64(replayWindowSize + 2); i > 1; i-- {
		tc(i-1, true)
	}
	tc(0, false)

	f.Reset()
	for i := uint64(replayWindowSize + 1); i > 1; i-- {
		tc(i-1, true)
	}
	tc(replayWindowSize+1, true)
	tc(0, false)

	f.Reset()
	for i := uint64(replayWindowSize + 1); i > 1; i-- {
		tc(i-1, true)
	}
	tc(0, true)
	tc(replayWindowSize+1, true)
}

// slowReplay is a deliberately simple reference: a set of seen counters and
// the highest one, with the same window rule.
type slowReplay struct {
	seen    map[uint64]bool
	highest uint64
	any     bool
}

func (s *slowReplay) accept(c uint64) bool {
	if c >= RejectAfterMessages || s.seen[c] {
		return false
	}
	if s.any && c+replayWindowSize < s.highest {
		return false
	}
	s.seen[c] = true
	if !s.any || c > s.highest {
		s.highest, s.any = c, true
	}
	return true
}

// TestReplayFilterAgainstReference compares random walks with the
// reference. The window is "at least 8128 back", so only counters within
// 8128 of the highest or far beyond are drawn, where both must agree.
func TestReplayFilterAgainstReference(t *testing.T) {
	r := newDetRand(7)
	for trial := range 20 {
		var f ReplayFilter
		ref := &slowReplay{seen: map[uint64]bool{}}
		base := uint64(trial) * 100000
		var b [8]byte
		for i := range 5000 {
			r.Read(b[:])
			step := (uint64(b[0]) | uint64(b[1])<<8) % 10000
			c := base + step
			if b[2]&1 == 0 {
				base += uint64(b[3]) // advance slowly
			}
			if ref.any && c+replayWindowSize < ref.highest && c+replayWindowSize+64 >= ref.highest {
				continue // the kernel may still remember up to one extra word
			}
			if got, want := f.Accept(c), ref.accept(c); got != want {
				t.Fatalf("trial %d step %d: Accept(%d) = %v, reference %v", trial, i, c, got, want)
			}
		}
	}
}
