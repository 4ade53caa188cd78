package ipc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

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
	const mask = unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
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
	// The file may have gone before the watch was added.
	if !l.isOurs() {
		l.markGone()
		return
	}
	name := filepath.Base(l.path)
	var buf [4096]byte // room for dozens of events
	for {
		n, err := l.watch.Read(buf[:])
		if err != nil {
			return // closed by Close
		}
		if eventsName(buf[:n], name) {
			l.markGone()
			return
		}
	}
}

// markGone records that the socket file is no longer ours, so Close will
// not unlink what may be another daemon's socket, and tells Removed.
func (l *Listener) markGone() {
	l.gone.Store(true)
	close(l.removed)
}

// eventsName reports whether a batch of inotify events has our name
// unlinked, moved away, moved over or the directory itself deleted. Events
// are matched by name, not by re-reading the inode, because a new socket
// bound at once by another daemon may get the same inode number.
func eventsName(b []byte, name string) bool {
	const hdr = unix.SizeofInotifyEvent
	for len(b) >= hdr {
		mask := binary.NativeEndian.Uint32(b[4:8])
		nlen := int(binary.NativeEndian.Uint32(b[12:16]))
		if nlen > len(b)-hdr {
			return false
		}
		ev := string(bytes.TrimRight(b[hdr:hdr+nlen], "\x00"))
		b = b[hdr+nlen:]
		if mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_Q_OVERFLOW) != 0 {
			return true
		}
		if mask&(unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0 && ev == name {
			return true
		}
	}
	return false
}
