package ipc

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Sentinel errors. Every rejected request wraps exactly one of them in an
// *Error, so callers can count failures by reason with errors.Is and the
// server knows which errno to answer with.
var (
	// ErrNoEquals: a request line has no '=' (wireguard-go answers EPROTO).
	ErrNoEquals = errors.New("uapi: line is not key=value")
	// ErrUnknownKey: the key is not valid at this point of the request.
	ErrUnknownKey = errors.New("uapi: unknown key")
	// ErrInvalidValue: the value does not parse for its key.
	ErrInvalidValue = errors.New("uapi: invalid value")
	// ErrLineTooLong: a line is longer than Limits.MaxLineBytes.
	ErrLineTooLong = errors.New("uapi: line too long")
	// ErrRequestTooLarge: the request exceeds Limits.MaxRequestBytes,
	// MaxPeers or MaxAllowedIPs.
	ErrRequestTooLarge = errors.New("uapi: request too large")
	// ErrTruncated: the stream ended before the blank line that ends a request.
	ErrTruncated = errors.New("uapi: request truncated")
	// ErrInvalidOperation: the first line of an operation is neither get=1
	// nor set=1.
	ErrInvalidOperation = errors.New("uapi: invalid operation")
	// ErrInUse: a live daemon already serves the interface's socket.
	ErrInUse = errors.New("uapi: socket in use by another daemon")
	// ErrBadName: the interface name cannot name a socket file.
	ErrBadName = errors.New("uapi: invalid interface name")
	// ErrClosed: the listener or client was closed.
	ErrClosed = errors.New("uapi: closed")
	// ErrBadReply: the daemon's reply does not follow the protocol.
	ErrBadReply = errors.New("uapi: malformed reply")
	// ErrRepliesBacklogged: a get waited the idle timeout for other
	// connections to read the replies they were sent (replyBudget).
	ErrRepliesBacklogged = errors.New("uapi: get replies unread by other clients exceed the limit")
	// ErrReplyUnread: the connection was closed because its client read
	// nothing of its get reply while other gets waited for the memory.
	ErrReplyUnread = errors.New("uapi: client did not read its get reply while other gets waited; connection closed")
	// ErrNotWgd: the process serving the socket is not wgd (wireguard-go,
	// say), so Counters did not send wgd_counters=1, which such a daemon
	// would log as an error.
	ErrNotWgd = errors.New("uapi: the daemon is not wgd: no counters")
)

// errnoUnknown is what wireguard-go answers for an error it cannot classify
// (ENOANO); we use it for device errors that are neither a bad config nor a
// busy port.
const errnoUnknown = unix.Errno(55)

// Error is a failed UAPI operation: the errno sent to the client (positive
// here, written negated on the wire as wireguard-go does), the 1-based line
// of the request it refers to (0 when none) and the reason.
type Error struct {
	Errno unix.Errno
	Line  int
	Err   error

	fatal bool // the stream is no longer at a request boundary
}

// Error describes the failure without echoing secret values.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %v (errno %d)", e.Line, e.Err, int(e.Errno))
	}
	return fmt.Sprintf("%v (errno %d)", e.Err, int(e.Errno))
}

// Unwrap lets errors.Is reach the sentinel and, for device errors, the
// device's own error.
func (e *Error) Unwrap() error { return e.Err }

// errnoOf returns the errno a reply carries for err: 0 for nil, the errno
// of an *Error, EADDRINUSE for a busy port and EINVAL for anything else a
// device rejects, as the device contract promises.
func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Errno
	}
	if errors.Is(err, unix.EADDRINUSE) {
		return unix.EADDRINUSE
	}
	return unix.EINVAL
}

func lineErr(errno unix.Errno, line int, format string, args ...any) *Error {
	return &Error{Errno: errno, Line: line, Err: fmt.Errorf(format, args...)}
}
