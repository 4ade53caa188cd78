package device

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// poller is a level-triggered epoll instance plus an eventfd that other
// goroutines write to wake the event loop. Only the loop goroutine calls
// wait, add, modify and remove; wake may be called from anywhere.
//
// The loop does not block inside epoll_wait(2) itself: a goroutine stuck in
// a raw blocking syscall keeps its OS thread and processor until the Go
// runtime's monitor notices, which delays the crypto workers it just woke by
// up to milliseconds. Instead the epoll fd, which is itself pollable, is
// handed to the runtime's network poller, and wait parks the goroutine until
// the epoll fd is readable or a deadline (the next timer) passes.
type poller struct {
	epfd    int
	file    *os.File // owns epfd; registered with the runtime poller
	raw     syscall.RawConn
	eventfd int
	// woken is true while a wake-up is written but not yet drained, so that
	// many wakes between two loop iterations cost one eventfd write.
	woken  atomic.Bool
	events [64]unix.EpollEvent
	// deadline is the runtime poller's read deadline now armed (zero:
	// none).
	deadline time.Time
	// tryFn is try bound to p; tryN and tryErr are its results.
	tryFn  func(uintptr) bool
	tryN   int
	tryErr error
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll fd non-blocking: %w", err)
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("epoll fd: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p := &poller{epfd: epfd, file: file, raw: raw, eventfd: efd}
	p.tryFn = p.try
	if err := p.add(efd, unix.EPOLLIN); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *poller) add(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll add fd %d: %w", fd, err)
	}
	return nil
}

func (p *poller) modify(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return fmt.Errorf("epoll mod fd %d: %w", fd, err)
	}
	return nil
}

func (p *poller) remove(fd int) {
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// wake makes the next (or current) wait return. Safe from any goroutine.
func (p *poller) wake() {
	if p.woken.Swap(true) {
		return
	}
	var one = [8]byte{1}
	_, _ = unix.Write(p.eventfd, one[:])
}

// drain empties the eventfd. It must run on every wake: a level-triggered
// eventfd left readable would spin the loop. The read comes before the flag
// is cleared: cleared first, a wake landing between the two would be read
// away here while its flag stayed set, and every later wake would be
// skipped.
func (p *poller) drain() {
	var buf [8]byte
	_, _ = unix.Read(p.eventfd, buf[:])
	p.woken.Store(false)
}

// wait blocks until an fd is ready, a wake arrives or timeout passes
// (negative timeout = forever). It returns the ready events; the eventfd is
// drained here and not returned.
func (p *poller) wait(timeout time.Duration) ([]unix.EpollEvent, bool, error) {
	var n int
	var err error
	if timeout == 0 {
		n, err = p.poll()
	} else {
		n, err = p.park(timeout) // polls once before it parks
	}
	if err != nil {
		return nil, false, err
	}
	evs := p.events[:n]
	woke := false
	out := evs[:0]
	for _, ev := range evs {
		if int(ev.Fd) == p.eventfd {
			p.drain()
			woke = true
			continue
		}
		out = append(out, ev)
	}
	return out, woke, nil
}

// poll collects ready events without blocking.
func (p *poller) poll() (int, error) {
	for {
		// A raw syscall: with a zero timeout it never blocks, so the
		// scheduler's syscall bookkeeping (which wakes the runtime's
		// monitor thread when it sleeps) buys nothing.
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd),
			uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, fmt.Errorf("epoll_wait: %w", e)
		}
		return int(n), nil
	}
}

// park waits in the runtime poller for the epoll fd to become readable, at
// most timeout (negative = no limit), then collects the events.
func (p *poller) park(timeout time.Duration) (int, error) {
	if err := p.setDeadline(timeout); err != nil {
		return 0, err
	}
	p.tryN, p.tryErr = 0, nil
	err := p.raw.Read(p.tryFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("epoll wait: %w", err)
	}
	return p.tryN, p.tryErr
}

// try is the runtime poller's readiness check: collect events, done when
// there are some (or epoll failed). It is bound once (tryFn) and reports
// through fields, so that a park allocates no closure.
func (p *poller) try(uintptr) bool {
	p.tryN, p.tryErr = p.poll()
	return p.tryN > 0 || p.tryErr != nil
}

// setDeadline arms the runtime poller's deadline for the coming park.
// Arming it is not free: the runtime adds a timer and, with no thread
// blocked in its own poller, wakes an idle thread to watch it (a futex
// wake, an inter-processor interrupt on a VM) on every park. Most parks
// want the deadline the previous one set (the same next timer), so a
// deadline still ahead and no more than deadlineSlack later than wanted is
// kept; one that is earlier only costs an early return, after which the
// loop parks again with the exact one.
func (p *poller) setDeadline(timeout time.Duration) error {
	var want time.Time
	now := time.Now()
	if timeout > 0 {
		want = now.Add(timeout)
	}
	cur := p.deadline
	switch {
	case want.IsZero() && cur.IsZero():
		return nil
	case !want.IsZero() && !cur.IsZero() && cur.After(now) && cur.Sub(want) <= deadlineSlack:
		return nil
	}
	if err := p.file.SetReadDeadline(want); err != nil {
		return fmt.Errorf("epoll deadline: %w", err)
	}
	p.deadline = want
	return nil
}

// deadlineSlack is how much later than asked a kept deadline may fire.
const deadlineSlack = time.Millisecond

func (p *poller) close() {
	unix.Close(p.eventfd)
	p.file.Close()
}
