package conf

import (
	"errors"
	"strconv"
)

// Sentinel errors that a *ParseError wraps, so that callers can tell the
// kinds of mistake apart with errors.Is.
var (
	// ErrSyntax is a line that is neither a section header nor key = value.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownKey is a key or section that neither wg nor wg-quick knows,
	// or a key in a section where it does not belong.
	ErrUnknownKey = errors.New("unknown key")
	// ErrInvalidValue is a value that does not parse for its key.
	ErrInvalidValue = errors.New("invalid value")
	// ErrDuplicatePeer is a public key used by two peers.
	ErrDuplicatePeer = errors.New("duplicate peer")
	// ErrMissingPublicKey is a [Peer] section without a PublicKey.
	ErrMissingPublicKey = errors.New("peer without public key")
)

// ParseError describes the first problem found in a configuration file. It
// never holds a private or preshared key: for those keys Value is empty.
type ParseError struct {
	File  string // the name given to Parse, or the path given to Load
	Line  int    // 1-based
	Key   string // the key as the file spells it, or a section header; may be empty
	Value string // the offending value, when there is one and it is not secret
	Msg   string // what is wrong, in words
	Err   error  // one of the sentinel errors above
}

// Error formats the error as "file:line: Key: msg", the form compilers use,
// so that editors can jump to the line.
func (e *ParseError) Error() string {
	s := e.File + ":" + strconv.Itoa(e.Line) + ": "
	if e.Key != "" {
		s += e.Key + ": "
	}
	return s + e.Msg
}

// Unwrap returns the sentinel error.
func (e *ParseError) Unwrap() error { return e.Err }
