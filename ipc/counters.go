package ipc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
)

// The drop counters are a wgd extension of the UAPI protocol: the operation
// "wgd_counters=1" answers one "name=value" line per counter (the JSON names
// of Counters: the device's drops and the listener's refusals), sorted by
// name, then errno and a blank line, like get. wg and wgctrl never send it;
// wireguard-go would close the connection and log the unknown operation as
// an error, so the client asks only a daemon it cannot tell is not wgd
// (servedByOther).

const opCounters = "wgd_counters=1"

// CountersDevice is a Device that counts drops by reason.
type CountersDevice interface {
	Counters() device.CountersSnapshot
}

// counters serves wgd_counters=1.
func (s *server) counters(r *bufio.Reader, w *bufio.Writer) error {
	b, err := r.ReadByte()
	if err != nil {
		return &Error{Errno: unix.EPROTO, Err: ErrTruncated, fatal: true}
	}
	if b != '\n' {
		return &Error{Errno: unix.EINVAL, Err: fmt.Errorf("%w: trailing byte %q after %s", ErrInvalidOperation, b, opCounters)}
	}
	cd, ok := s.dev.(CountersDevice)
	if !ok {
		return &Error{Errno: unix.EINVAL, Err: fmt.Errorf("%w: device has no counters", ErrInvalidOperation)}
	}
	m, err := countersMap(Counters{CountersSnapshot: cd.Counters(), Stats: s.stats.snapshot()})
	if err != nil {
		return &Error{Errno: errnoUnknown, Err: err}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s=%d\n", k, m[k])
	}
	return nil
}

func countersMap(c Counters) (map[string]uint64, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]uint64
	return m, json.Unmarshal(data, &m)
}

// Counters asks the daemon for its drop counters and UAPI refusals (a wgd
// extension). Names the client does not know are ignored, so an older
// client reads a newer daemon.
func (c *Client) Counters() (Counters, error) {
	var snap Counters
	if c.servedByOther() {
		return snap, ErrNotWgd
	}
	if _, err := c.w.WriteString(opCounters + "\n\n"); err != nil {
		return snap, err
	}
	if err := c.w.Flush(); err != nil {
		return snap, fmt.Errorf("uapi: %w", err)
	}
	m := make(map[string]uint64)
	lr := newLineReader(c.r, 256, 64<<10)
	for {
		line, err := lr.next()
		if err != nil {
			return snap, fmt.Errorf("%w: %w", ErrBadReply, err)
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return snap, fmt.Errorf("%w: %q", ErrBadReply, line)
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return snap, fmt.Errorf("%w: %q", ErrBadReply, line)
		}
		if string(k) == "errno" {
			if blank, err := lr.next(); err != nil || len(blank) != 0 {
				return snap, fmt.Errorf("%w: no blank line after errno", ErrBadReply)
			}
			if n != 0 {
				return snap, &Error{Errno: unix.Errno(-n), Err: fmt.Errorf("daemon answered errno=%d", n)}
			}
			break
		}
		m[string(k)] = uint64(n)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return snap, err
	}
	return snap, json.Unmarshal(data, &snap)
}

// servedByOther reports whether the process at the other end of the socket
// (SO_PEERCRED: the one that listened) is known not to be wgd: its
// executable is not this one and its name is not "wgd". Whatever cannot be
// read (a peer in a pid namespace we do not see, /proc hidden) counts as
// not known.
func (c *Client) servedByOther() bool {
	uc, ok := c.conn.(*net.UnixConn)
	if !ok {
		return false
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var credErr error
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil || cred.Pid <= 0 {
		return false
	}
	proc := "/proc/" + strconv.Itoa(int(cred.Pid))
	if exe, err := os.Readlink(proc + "/exe"); err == nil {
		if self, err := os.Executable(); err == nil && self == exe {
			return false
		}
	}
	comm, err := os.ReadFile(proc + "/comm")
	if err != nil {
		return false
	}
	return strings.TrimSpace(string(comm)) != "wgd"
}
