package device

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

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
	n, err := p.poll()
	if err != nil {
		return nil, false, err
	}
	if n == 0 && timeout != 0 {
		n, err = p.park(timeout)
		if err != nil {
			return nil, false, err
		}
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
		n, err := unix.EpollWait(p.epfd, p.events[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("epoll_wait: %w", err)
		}
		return n, nil
	}
}

// park waits in the runtime poller for the epoll fd to become readable, at
// most timeout (negative = no limit), then collects the events.
func (p *poller) park(timeout time.Duration) (int, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if err := p.file.SetReadDeadline(deadline); err != nil {
		return 0, fmt.Errorf("epoll deadline: %w", err)
	}
	var n int
	var perr error
	err := p.raw.Read(func(uintptr) bool {
		n, perr = p.poll()
		return n > 0 || perr != nil
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("epoll wait: %w", err)
	}
	return n, perr
}

func (p *poller) close() {
	unix.Close(p.eventfd)
	p.file.Close()
}
