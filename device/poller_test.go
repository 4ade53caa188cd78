package device

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPollerDeadlineKept checks when park re-arms the runtime poller's
// deadline: when one is wanted and none is armed, when the armed one would
// fire more than deadlineSlack late, when the armed one has passed, and
// when no deadline is wanted any more.
func TestPollerDeadlineKept(t *testing.T) {
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	set := func(timeout time.Duration) time.Time {
		t.Helper()
		if err := p.setDeadline(timeout); err != nil {
			t.Fatal(err)
		}
		return p.deadline
	}
	if d := set(-1); !d.IsZero() {
		t.Fatalf("no timeout armed %v", d)
	}
	first := set(10 * time.Second)
	if first.IsZero() {
		t.Fatal("a 10 s timeout armed nothing")
	}
	// The same deadline again, or a later one: kept (an early wake-up
	// costs one return, re-arming costs a thread wake-up every park).
	if d := set(10 * time.Second); !d.Equal(first) {
		t.Errorf("same timeout re-armed: %v -> %v", first, d)
	}
	if d := set(time.Minute); !d.Equal(first) {
		t.Errorf("later timeout re-armed: %v -> %v", first, d)
	}
	// An earlier one must be armed: the kept one would fire late.
	if d := set(time.Second); !d.Before(first) {
		t.Errorf("earlier timeout not armed: still %v", d)
	}
	// No timeout wanted any more: disarmed.
	if d := set(-1); !d.IsZero() {
		t.Errorf("deadline %v kept with no timeout wanted", d)
	}
	// A deadline that has passed is replaced.
	past := set(time.Nanosecond) // passed by the next call
	if d := set(time.Hour); d.Equal(past) {
		t.Errorf("passed deadline %v kept", past)
	}
}

// TestPollerParkWakes: park returns for a wake, and at its deadline with
// no events, and the deadline is honoured even when kept from before.
func TestPollerParkWakes(t *testing.T) {
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	start := time.Now()
	evs, woke, err := p.wait(20 * time.Millisecond)
	if err != nil || len(evs) != 0 || woke {
		t.Fatalf("idle wait: %v events, woke %v, err %v", len(evs), woke, err)
	}
	if el := time.Since(start); el < 19*time.Millisecond || el > 2*time.Second {
		t.Errorf("20 ms wait took %v", el)
	}
	go p.wake()
	_, woke, err = p.wait(5 * time.Second)
	if err != nil || !woke {
		t.Fatalf("wait with a wake: woke %v, err %v", woke, err)
	}
	// A readable fd in the set is reported.
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := p.add(fds[0], unix.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fds[1], []byte{1}); err != nil {
		t.Fatal(err)
	}
	evs, _, err = p.wait(5 * time.Second)
	if err != nil || len(evs) != 1 || int(evs[0].Fd) != fds[0] {
		t.Fatalf("readable pipe: %v, err %v", evs, err)
	}
}
