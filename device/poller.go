package device

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// poller is a level-triggered epoll instance plus an eventfd that other
// goroutines write to wake the event loop. Only the loop goroutine calls
// wait, add, modify and remove; wake may be called from anywhere.
type poller struct {
	epfd    int
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
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p := &poller{epfd: epfd, eventfd: efd}
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
// eventfd left readable would spin the loop.
func (p *poller) drain() {
	var buf [8]byte
	p.woken.Store(false)
	_, _ = unix.Read(p.eventfd, buf[:])
}

// wait blocks until an fd is ready, a wake arrives or timeout passes
// (negative timeout = forever). It returns the ready events; the eventfd is
// drained here and not returned.
func (p *poller) wait(timeout time.Duration) ([]unix.EpollEvent, bool, error) {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	for {
		n, err := unix.EpollWait(p.epfd, p.events[:], ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("epoll_wait: %w", err)
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
}

func (p *poller) close() {
	unix.Close(p.eventfd)
	unix.Close(p.epfd)
}
