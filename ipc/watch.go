package ipc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// startWatch watches the socket directory with inotify and closes
// l.removed once our socket file is gone or replaced. The watcher sleeps in
// the runtime's poller, so an idle daemon is woken only when something in
// the directory changes. Watching the directory rather than the file (as
// wireguard-go does) also sees a rename over our name.
func (l *Listener) startWatch(dir string) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("uapi: inotify: %w", err)
	}
	const mask = unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_CREATE |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return fmt.Errorf("uapi: inotify watch %s: %w", dir, err)
	}
	// A non-blocking fd makes os.File use the poller, so Close ends a Read.
	l.watch = os.NewFile(uintptr(fd), "inotify")
	l.wg.Add(1)
	go l.watchLoop()
	return nil
}

func (l *Listener) watchLoop() {
	defer l.wg.Done()
	var buf [4096]byte // room for many events; their content is not needed
	for {
		// Check first: the file may have gone before the watch was added.
		if !l.isOurs() {
			close(l.removed)
			return
		}
		if _, err := l.watch.Read(buf[:]); err != nil {
			return // closed by Close
		}
	}
}
