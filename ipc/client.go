package ipc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
)

// Client is one connection to a UAPI socket, for wgd's own show/set. It is
// not safe for concurrent use; operations on it run one after another, as
// the protocol allows.
type Client struct {
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	limits Limits
}

// Dial connects to the UAPI socket of iface in DefaultDir.
func Dial(iface string) (*Client, error) {
	if err := checkName(iface); err != nil {
		return nil, err
	}
	return DialPath(SocketPath(iface))
}

// DialPath connects to the UAPI socket at path.
func DialPath(path string) (*Client, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("uapi: %w", err)
	}
	return &Client{conn: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

// SetDeadline bounds the operations that follow (zero = none).
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Get returns the device's state. A daemon error is an *Error.
func (c *Client) Get() (device.Info, []device.PeerInfo, error) {
	if _, err := c.w.WriteString("get=1\n\n"); err != nil {
		return device.Info{}, nil, err
	}
	if err := c.w.Flush(); err != nil {
		return device.Info{}, nil, fmt.Errorf("uapi: %w", err)
	}
	return ParseGet(c.r, c.limits)
}

// Set sends cfg as one transaction. A daemon error is an *Error carrying
// its errno (EINVAL: invalid value, EADDRINUSE: port taken, ...).
func (c *Client) Set(cfg *device.Config) error {
	c.w.WriteString("set=1\n")
	if err := WriteSet(c.w, cfg); err != nil {
		return fmt.Errorf("uapi: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("uapi: %w", err)
	}
	return c.readErrno()
}

// readErrno reads "errno=N" and the blank line that end a set reply.
func (c *Client) readErrno() error {
	lr := newLineReader(c.r, 64, 128)
	line, err := lr.next()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	v, ok := bytes.CutPrefix(line, []byte("errno="))
	n, perr := strconv.ParseInt(string(v), 10, 32)
	if !ok || perr != nil {
		return fmt.Errorf("%w: %q", ErrBadReply, line)
	}
	if blank, err := lr.next(); err != nil || len(blank) != 0 {
		return fmt.Errorf("%w: no blank line after errno", ErrBadReply)
	}
	if n != 0 {
		return &Error{Errno: unix.Errno(-n), Err: fmt.Errorf("daemon answered errno=%d", n)}
	}
	return nil
}

// Interfaces lists the interfaces with a live UAPI socket in DefaultDir,
// in directory order, as `wg show interfaces` lists userspace ones (wg
// reads the directory with readdir and does not sort).
func Interfaces() ([]string, error) { return InterfacesIn(DefaultDir) }

// InterfacesIn lists the interfaces with a live UAPI socket in dir. A
// missing directory means none. Stale socket files (nothing accepts) are
// skipped but, unlike wg(8), not unlinked: that is the owner's business.
func InterfacesIn(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("uapi: %w", err)
	}
	// (*File).ReadDir keeps the directory's order; os.ReadDir would sort.
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("uapi: %w", err)
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sock")
		if !ok || checkName(name) != nil {
			continue
		}
		if e.Type()&os.ModeSocket == 0 {
			// readdir's type is the entry's own: a symlink, or the file
			// a socket is bind-mounted over (a container given one
			// socket). stat(2) sees the socket, as wg's check does.
			fi, err := os.Stat(socketPath(dir, name))
			if err != nil || fi.Mode()&os.ModeSocket == 0 {
				continue
			}
		}
		c, err := net.DialTimeout("unix", socketPath(dir, name), time.Second)
		if err != nil {
			if errors.Is(err, os.ErrPermission) {
				// Listed, as wg lists it: showing it then says
				// "Permission denied" instead of nothing at all.
				names = append(names, name)
			}
			continue
		}
		c.Close()
		names = append(names, name)
	}
	return names, nil
}
