package ipc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/conf"
	"github.com/wgdvpn/wgd/internal/ratelog"
)

// Serve accepts connections and serves dev on each in its own goroutine
// until ctx is done or Close is called; it then closes the connections,
// waits for their goroutines and returns nil (or the accept error that
// stopped it). Serve may be called once. Failed operations are logged to
// log (nil = slog.Default()).
func (l *Listener) Serve(ctx context.Context, dev Device, log *slog.Logger) error {
	l.wg.Add(1)
	defer l.wg.Done()
	stop := context.AfterFunc(ctx, func() { l.ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s := &server{l: l, dev: dev, log: log, stats: &l.stats}
	if s.log == nil {
		s.log = slog.Default()
	}
	handlers := make(chan struct{}, l.limits.MaxConns)
	var pause time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil && acceptRetry(err) && ctx.Err() == nil {
			// Out of file descriptors or memory for now (a burst of
			// clients at a low ulimit -n): stopping would take the
			// UAPI, and with it the daemon, away for good. Wait and
			// try again, as net/http does, 5 ms doubling to 1 s.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.warn("accept", "uapi: accept failed, retrying", "err", err, "in", pause)
			select {
			case <-time.After(pause):
			case <-l.done:
			case <-ctx.Done():
			}
			continue
		}
		pause = 0
		if err != nil {
			l.closeConns()
			select {
			case <-l.done:
				return nil
			default:
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("uapi: accept: %w", err)
		}
		select {
		case handlers <- struct{}{}:
		default:
			s.stats.connsRefused.Add(1)
			s.warn("too many connections", "uapi: too many connections, closing one", "max", l.limits.MaxConns)
			c.Close()
			continue
		}
		if !l.track(c) {
			c.Close()
			<-handlers
			continue
		}
		l.wg.Add(1)
		go func() {
			defer func() { l.untrack(c); <-handlers; l.wg.Done() }()
			s.serveConn(c)
		}()
	}
}

// track registers c so Close can end it; false once the listener closes.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

func (l *Listener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

// server is one Serve call: the device and logger its connections use.
type server struct {
	l     *Listener
	dev   Device
	log   *slog.Logger
	stats *stats
	lim   ratelog.Limiter // one warning per reason every few seconds
}

// warn logs msg unless a line of the same reason was logged moments ago.
func (s *server) warn(reason, msg string, args ...any) {
	ok, held := s.lim.Allow(reason, s.l.now())
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	s.log.Warn(msg, args...)
}

// acceptRetry reports whether an accept error is a shortage that passes
// (EMFILE, ENFILE, ENOBUFS, ENOMEM) rather than a closed listener.
func acceptRetry(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) ||
		errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM)
}

// serveConn runs operations on one connection until EOF, an invalid
// operation, a lost request boundary or an idle timeout.
func (s *server) serveConn(c net.Conn) {
	l := s.l
	dc := &deadlineConn{Conn: c, idle: l.limits.IdleTimeout, now: l.now}
	r := bufio.NewReaderSize(dc, 64<<10)
	w := bufio.NewWriterSize(dc, 64<<10)
	for {
		lr := newLineReader(r, l.limits.MaxLineBytes, int64(l.limits.MaxLineBytes))
		line, err := lr.next()
		if err != nil {
			if !errors.Is(err, ErrTruncated) {
				s.stats.readErrors.Add(1)
				s.warn("read", "uapi: reading operation", "err", err)
			}
			return
		}
		// A copy: line points into r's buffer, which the operation's own
		// reads overwrite before it is logged or counted.
		op := string(line)
		if lr.cr {
			// wireguard-go compares the operation line with "set=1\n"
			// and "get=1\n" exactly; only the lines after it may end
			// in "\r\n".
			op += "\r"
		}
		var opErr error
		switch op {
		case "get=1":
			opErr = s.get(c, r, w)
		case "set=1":
			opErr = s.set(r)
		case opCounters:
			opErr = s.counters(r, w)
		default:
			s.stats.badOperation.Add(1)
			s.warn("operation", "uapi: closing connection", "err", ErrInvalidOperation, "op", fmt.Sprintf("%.32q", conf.HideKeys(op)))
			return
		}
		if opErr != nil {
			s.failed(op, opErr)
		}
		if !s.reply(w, opErr) {
			return
		}
	}
}

// get checks the blank line after get=1 (wireguard-go reads exactly one
// more byte and answers EINVAL if it is not a newline) and writes the state.
func (s *server) get(c net.Conn, r *bufio.Reader, w *bufio.Writer) error {
	b, err := r.ReadByte()
	if err != nil {
		return &Error{Errno: unix.EPROTO, Err: ErrTruncated, fatal: true}
	}
	if b != '\n' {
		return &Error{Errno: unix.EINVAL, Err: fmt.Errorf("%w: trailing byte %q after get=1", ErrInvalidOperation, b)}
	}
	timeout := time.NewTimer(s.l.limits.IdleTimeout)
	defer timeout.Stop()
	var cut atomic.Bool
	h, ok := s.l.replies.start(func() { cut.Store(true); c.Close() }, unreadBytes(c), timeout.C)
	if !ok {
		return &Error{Errno: unix.EAGAIN, Err: ErrRepliesBacklogged}
	}
	if err := writeGet(w, s.dev, s.l.replies, h); err != nil {
		if cut.Load() {
			return &Error{Errno: unix.ETIMEDOUT, Err: ErrReplyUnread, fatal: true}
		}
		return &Error{Errno: errnoUnknown, Err: err}
	}
	return nil
}

// unreadBytes returns a function that reports how many bytes written to c
// its client has not read yet (SIOCOUTQ), or -1; nil when c has no fd.
func unreadBytes(c net.Conn) func() int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() int {
		n := -1
		rc.Control(func(fd uintptr) {
			if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
				n = v
			}
		})
		return n
	}
}

// set parses the whole request, then applies it or nothing.
func (s *server) set(r *bufio.Reader) error {
	cfg, err := ParseSet(r, s.l.limits)
	if err != nil {
		return err
	}
	if err := s.dev.Apply(cfg); err != nil {
		return &Error{Errno: errnoOf(err), Err: err}
	}
	s.log.Debug("uapi: applied set", "peers", len(cfg.Peers))
	return nil
}

// failed counts and logs an operation that is answered with an error.
func (s *server) failed(op string, err error) {
	if op == "set=1" {
		s.stats.setRejected.Add(1)
	} else {
		s.stats.getFailed.Add(1)
	}
	errno := int(errnoOf(err))
	s.warn(fmt.Sprintf("%s errno %d", op, errno), "uapi: operation failed", "op", op, "err", err, "errno", errno)
}

// reply writes errno=-N and the blank line; it reports whether the
// connection may carry another operation.
func (s *server) reply(w *bufio.Writer, opErr error) bool {
	errno := errnoOf(opErr)
	fmt.Fprintf(w, "errno=%d\n\n", -int(errno))
	if err := w.Flush(); err != nil {
		return false
	}
	var e *Error
	return !errors.As(opErr, &e) || !e.fatal
}

// deadlineConn pushes the connection's deadline forward on every read and
// write, so a client is cut off after idle time without progress, not after
// a fixed total (a 1M-peer setconf may take a while).
type deadlineConn struct {
	net.Conn
	idle time.Duration
	now  func() time.Time
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	d.Conn.SetReadDeadline(d.now().Add(d.idle))
	return d.Conn.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	d.Conn.SetWriteDeadline(d.now().Add(d.idle))
	return d.Conn.Write(p)
}
