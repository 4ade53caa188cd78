package tun

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxSubscriptions bounds how often the watcher subscribes again, after the
// link moved to another namespace or the netlink socket failed (ENOBUFS
// when the kernel's queue overflowed), so a broken setup cannot spin.
const maxSubscriptions = 16

// endReason says why one netlink subscription stopped being read.
type endReason uint8

const (
	endClosed  endReason = iota // the device is being closed
	endDeleted                  // the link was deleted; EventDeleted sent
	endMoved                    // the link left the namespace we watch
	endLost                     // netlink closed the channel (socket error)
)

// watcher turns rtnetlink link messages for one TUN link into Events. It
// runs on its own goroutine from Create until Close or deletion, and owns
// its fields; it only reads the TUN fd, which Close keeps open until the
// watcher has returned.
type watcher struct {
	tunFd   int
	out     chan<- Event
	done    <-chan struct{}
	ifindex int
	up      bool // IFF_UP and IFF_RUNNING as last reported
	mtu     int  // MTU as last reported
}

func newWatcher(tunFd int, out chan<- Event, done <-chan struct{}) (*watcher, error) {
	idx, err := ifIndex(tunFd)
	if err != nil {
		return nil, err
	}
	mtu, err := getMTU(tunFd)
	if err != nil {
		return nil, err
	}
	return &watcher{tunFd: tunFd, out: out, done: done, ifindex: idx, mtu: mtu}, nil
}

// run subscribes in the link's namespace and reads until the device closes
// or the link is deleted, subscribing again after a move. It closes out on
// return, so the consumer's range loop ends. When it cannot subscribe (or
// resubscribed too often) it says so with EventUnwatched and waits for the
// close: the link is not gone, and a closed channel would say it was.
func (w *watcher) run() {
	defer close(w.out)
	for i := 0; ; i++ {
		if i == maxSubscriptions {
			w.unwatched(errors.New("netlink subscription lost too often"))
			return
		}
		ch, stop, err := w.subscribe()
		if err != nil {
			w.unwatched(err)
			return
		}
		reason := w.consume(ch)
		close(stop)
		// netlink's reader goroutine ends only after its socket is closed
		// and it closed ch; drain so it is never stuck on a send.
		for range ch {
		}
		switch reason {
		case endClosed, endDeleted:
			return
		case endMoved:
			idx, err := ifIndex(w.tunFd)
			if err != nil {
				if !w.checkDeleted() {
					// Moved where this process cannot look (reaching
					// another namespace takes CAP_SYS_ADMIN): the
					// link is not gone, and the TUN's reads will
					// still tell when it is.
					w.unwatched(fmt.Errorf("link moved to another network namespace: %w", err))
				}
				return
			}
			w.ifindex = idx
		}
	}
}

// unwatched reports that link messages are no longer followed and waits
// until the device closes.
func (w *watcher) unwatched(err error) {
	if w.emit(Event{Kind: EventUnwatched, Err: err}) {
		<-w.done
	}
}

// subscribe opens a link subscription in the namespace the link is in now,
// with a dump of the existing links so the state is in sync after a move.
func (w *watcher) subscribe() (chan netlink.LinkUpdate, chan struct{}, error) {
	ns, err := devNetns(w.tunFd)
	if err != nil {
		return nil, nil, err
	}
	opts := netlink.LinkSubscribeOptions{ListExisting: true}
	if ns >= 0 {
		defer unix.Close(ns)
		// Only a link in another namespace needs the subscription opened
		// there, which takes setns(2) and so CAP_SYS_ADMIN: with only
		// CAP_NET_ADMIN (the systemd unit, a container with
		// --cap-add NET_ADMIN) subscribing failed.
		if same, err := sameNetns(ns); err != nil || !same {
			h := netns.NsHandle(ns)
			opts.Namespace = &h
		}
	}
	ch := make(chan netlink.LinkUpdate, 8)
	stop := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(ch, stop, opts); err != nil {
		close(stop)
		return nil, nil, err
	}
	return ch, stop, nil
}

// consume handles updates until one of the end reasons happens.
func (w *watcher) consume(ch <-chan netlink.LinkUpdate) endReason {
	for {
		select {
		case <-w.done:
			return endClosed
		case u, ok := <-ch:
			if !ok {
				return endLost
			}
			if r, end := w.handle(u); end {
				return r
			}
		}
	}
}

// handle turns one update for our link into events.
func (w *watcher) handle(u netlink.LinkUpdate) (endReason, bool) {
	if int(u.Index) != w.ifindex {
		return 0, false
	}
	if u.Header.Type == unix.RTM_DELLINK {
		if w.checkDeleted() {
			return endDeleted, true
		}
		return endMoved, true
	}
	if u.Header.Type != unix.RTM_NEWLINK {
		return 0, false
	}
	const running = unix.IFF_UP | unix.IFF_RUNNING
	if up := u.Flags&running == running; up != w.up {
		w.up = up
		kind := EventDown
		if up {
			kind = EventUp
		}
		if !w.emit(Event{Kind: kind}) {
			return endClosed, true
		}
	}
	if a := u.Attrs(); a != nil && a.MTU != 0 && a.MTU != w.mtu {
		w.mtu = a.MTU
		if !w.emit(Event{Kind: EventMTU, MTU: a.MTU}) {
			return endClosed, true
		}
	}
	return 0, false
}

// checkDeleted tells deletion from a move: the kernel sends RTM_DELLINK for
// both, but only deletion detaches the fd (TUNGETIFF then fails with
// EBADFD; the detach happens before the message is sent). On deletion it
// emits EventDeleted.
func (w *watcher) checkDeleted() bool {
	if _, err := tunName(w.tunFd); !errors.Is(err, ErrDeleted) {
		return false
	}
	w.emit(Event{Kind: EventDeleted})
	return true
}

// emit delivers ev unless the device is closing. It blocks while the
// consumer is behind: dropping an EventDeleted would be worse.
func (w *watcher) emit(ev Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-w.done:
		return false
	}
}
