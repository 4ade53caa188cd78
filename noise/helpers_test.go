package noise

import (
	"crypto/sha256"
	"time"
)

// testNow is a fixed clock reading; tests move time by adding to it.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// detRand is a deterministic, never-failing random source for tests.
type detRand struct {
	state [32]byte
}

func newDetRand(seed byte) *detRand { return &detRand{state: [32]byte{seed}} }

func (r *detRand) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		r.state = sha256.Sum256(r.state[:])
		n += copy(p[n:], r.state[:])
	}
	return n, nil
}
