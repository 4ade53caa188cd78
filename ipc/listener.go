package ipc

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDir is where wg(8), wgctrl-go and wireguard-go look for UAPI
// sockets.
const DefaultDir = "/var/run/wireguard"

// SocketPath is the UAPI socket of iface in DefaultDir.
func SocketPath(iface string) string { return socketPath(DefaultDir, iface) }

func socketPath(dir, iface string) string { return filepath.Join(dir, iface+".sock") }

// checkName rejects names that are not a single path element or that no
// Linux interface can have (IFNAMSIZ is 16 with the NUL).
func checkName(iface string) error {
	if iface == "" || len(iface) >= unix.IFNAMSIZ || iface == "." || iface == ".." ||
		strings.ContainsAny(iface, "/\x00 \t\n") {
		return fmt.Errorf("%w: %q", ErrBadName, iface)
	}
	return nil
}

// ListenConfig holds the options of Listen. The zero value serves in
// DefaultDir with default limits and the real clock.
type ListenConfig struct {
	Dir    string           // socket directory; "" = DefaultDir
	Limits Limits           // zero fields = defaults
	Now    func() time.Time // clock for connection deadlines; nil = time.Now
}

// Listener is a bound UAPI socket. It serves one Device (Serve), reports
// the socket file's removal (Removed) and removes the file on Close.
type Listener struct {
	path   string
	ino    uint64 // inode of our socket file, so Close never unlinks another daemon's
	ln     *net.UnixListener
	limits Limits
	now    func() time.Time

	watch   *os.File // inotify on the directory
	removed chan struct{}
	gone    atomic.Bool   // the watcher saw our file unlinked or replaced
	done    chan struct{} // closed by Close
	once    sync.Once
	wg      sync.WaitGroup // the watcher and every Serve goroutine

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}

	stats stats
	// replies bounds the get replies held for clients that do not read.
	replies *replyBudget
}

// Listen binds DefaultDir/IFACE.sock with default options.
func Listen(iface string) (*Listener, error) { return ListenConfig{}.Listen(iface) }

// Listen creates the directory (0755) and binds DIR/IFACE.sock readable
// and writable by root only, as wireguard-go does. A stale socket file (no
// daemon accepts on it) is replaced; a live one is left alone: ErrInUse.
func (c ListenConfig) Listen(iface string) (*Listener, error) {
	if err := checkName(iface); err != nil {
		return nil, err
	}
	dir := c.Dir
	if dir == "" {
		dir = DefaultDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("uapi: socket directory: %w", err)
	}
	path := socketPath(dir, iface)
	ln, err := bindReplacingStale(path)
	if err != nil {
		return nil, err
	}
	l, err := c.serveOn(path, ln)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return l, nil
}

// serveOn makes the Listener for ln, bound to path, and starts watching
// path's directory; it closes ln on error.
func (c ListenConfig) serveOn(path string, ln *net.UnixListener) (*Listener, error) {
	l := &Listener{
		path: path, ln: ln, limits: c.Limits.withDefaults(), now: c.Now,
		removed: make(chan struct{}), done: make(chan struct{}),
		conns: make(map[net.Conn]struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.replies = newReplyBudget(l.limits.MaxUnreadReplyBytes, replyStall, l.now)
	var ok bool
	if l.ino, ok = inode(path); !ok {
		ln.Close()
		return nil, fmt.Errorf("uapi: socket file %s is gone", path)
	}
	if err := l.startWatch(filepath.Dir(path)); err != nil {
		ln.Close()
		return nil, err
	}
	return l, nil
}

// ListenFile serves on f, a listening unix socket another process bound
// (wireguard-go's WG_UAPI_FD), bound to a path: the path is watched and
// removed on Close as with Listen. f is taken over (closed on error).
func (c ListenConfig) ListenFile(f *os.File) (*Listener, error) {
	fl, err := net.FileListener(f)
	f.Close() // FileListener holds its own copy of the fd
	if err != nil {
		return nil, fmt.Errorf("uapi: inherited socket: %w", err)
	}
	ln, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, fmt.Errorf("uapi: inherited socket is not a unix socket (%s)", fl.Addr().Network())
	}
	path := ln.Addr().String()
	if path == "" || path[0] == '@' || !filepath.IsAbs(path) {
		ln.Close()
		return nil, fmt.Errorf("uapi: inherited socket is not bound to an absolute path (%q)", path)
	}
	ln.SetUnlinkOnClose(false) // Close unlinks only if the file is still ours
	return c.serveOn(path, ln)
}

// bindReplacingStale binds path with umask 077 (the umask is per process;
// it is restored at once and only ever narrows what others create). On
// EADDRINUSE it connects: if a daemon answers, the socket is its; if the
// connection is refused, the file is stale and is replaced.
func bindReplacingStale(path string) (*net.UnixListener, error) {
	ln, err := bindPrivate(path)
	if err == nil || !errors.Is(err, unix.EADDRINUSE) {
		return ln, err
	}
	c, derr := net.DialTimeout("unix", path, time.Second)
	if derr == nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s", ErrInUse, path)
	}
	if !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, fs.ErrNotExist) {
		return nil, fmt.Errorf("uapi: probing %s: %w", path, derr)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("uapi: removing stale socket: %w", err)
	}
	return bindPrivate(path)
}

func bindPrivate(path string) (*net.UnixListener, error) {
	old := unix.Umask(0o077)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("uapi: %w", err)
	}
	ln.SetUnlinkOnClose(false) // Close unlinks only if the file is still ours
	return ln, nil
}

// Path is the socket file's path.
func (l *Listener) Path() string { return l.path }

// Removed is closed when the socket file is unlinked or replaced by someone
// else; a daemon exits then, as wireguard-go does. Close does not close it.
func (l *Listener) Removed() <-chan struct{} { return l.removed }

// Close stops Serve, closes every connection, waits for their goroutines
// and removes the socket file if it is still ours. It is idempotent.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.watch.Close()
		l.closeConns()
		l.wg.Wait()
		if !l.gone.Load() && l.isOurs() {
			if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
				err = rerr
			}
		}
	})
	return err
}

func inode(path string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0, false
	}
	return st.Ino, true
}

func (l *Listener) isOurs() bool {
	ino, ok := inode(l.path)
	return ok && ino == l.ino
}
