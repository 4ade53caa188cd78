package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/ipc"
)

// errWgFailed is returned when a wg-compatible command failed without a
// message of its own (a failed write to stdout).
var errWgFailed = errors.New("command failed")

// wgBackend is how the wg-compatible commands reach interfaces. The real one
// speaks UAPI over /var/run/wireguard; tests use an in-memory fake.
type wgBackend interface {
	Interfaces() ([]string, error)
	Get(name string) (device.Info, []device.PeerInfo, error)
	Set(name string, cfg *device.Config) error
}

// countersSource is implemented by backends that can report the drop
// counters of an interface (wgd's UAPI extension); without it, or against
// a daemon that lacks the extension, `counters` is null in JSON.
type countersSource interface {
	Counters(name string) (*ipc.Counters, error)
}

// resolver looks up host names for endpoints; *net.Resolver is one.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// wgEnv is everything a wg-compatible command reads from or writes to the
// outside world, so that the commands are plain functions under test.
type wgEnv struct {
	Prog   string // program name in usage lines
	Stdout io.Writer
	Stderr io.Writer
	// Progress gets the lines that tell of a wait while it lasts (wg's
	// "Trying again in N seconds..."), which a held-back Stderr would
	// only show at the end; nil means Stderr.
	Progress  io.Writer
	StdoutTTY bool
	Getenv    func(string) string
	Now       func() time.Time
	Sleep     func(time.Duration) // between endpoint resolution retries
	Resolver  resolver
	Backend   wgBackend
}

// counters returns the drop counters of an interface when the backend has
// them, else nil.
func (e *wgEnv) counters(name string) *ipc.Counters {
	src, ok := e.Backend.(countersSource)
	if !ok {
		return nil
	}
	c, err := src.Counters(name)
	if err != nil {
		return nil
	}
	return c
}

// errnoText turns an error into the strerror(3) text wg would print after
// "Unable to access interface: ". A missing socket reads "No such device",
// which is what wg says for an interface that does not exist.
func errnoText(err error) string {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) {
		return "No such device"
	}
	return strerror(err)
}

// strerror is C's strerror for an errno inside err, else err's own text.
func strerror(err error) string {
	var errno syscall.Errno
	var ipcErr *ipc.Error
	switch {
	case errors.As(err, &ipcErr) && ipcErr.Errno != 0:
		// A daemon's answer: its errno, as wg prints it.
		return strerror(syscall.Errno(ipcErr.Errno))
	case errors.As(err, &errno):
		s := errno.Error()
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

// ipcBackend reaches interfaces over their UAPI sockets, one connection per
// operation.
type ipcBackend struct{}

func (ipcBackend) Interfaces() ([]string, error) { return ipc.Interfaces() }

func (ipcBackend) Get(name string) (device.Info, []device.PeerInfo, error) {
	c, err := ipc.Dial(name)
	if err != nil {
		return device.Info{}, nil, err
	}
	defer c.Close()
	return c.Get()
}

func (ipcBackend) Set(name string, cfg *device.Config) error {
	c, err := ipc.Dial(name)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Set(cfg)
}

// Counters reads the daemon's drop counters and UAPI refusals (a wgd UAPI
// extension), for `wgd show --json`.
func (ipcBackend) Counters(name string) (*ipc.Counters, error) {
	c, err := ipc.Dial(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	snap, err := c.Counters()
	if err != nil {
		return nil, err
	}
	return &snap, nil
}

// newWgEnv binds a command to the process: its streams, environment, clock
// and the UAPI backend.
func newWgEnv(cmd *cobra.Command) *wgEnv {
	out := cmd.OutOrStdout()
	tty := false
	if f, ok := out.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		tty = err == nil
	}
	return &wgEnv{
		Prog: cmd.Root().Name(), Stdout: out, Stderr: cmd.ErrOrStderr(), StdoutTTY: tty,
		Getenv: os.Getenv, Now: time.Now, Sleep: time.Sleep,
		Resolver: net.DefaultResolver, Backend: ipcBackend{},
	}
}

// addWgCommands adds the wg(8)-compatible subcommands to root. They parse
// their own arguments (flag parsing is off) because wg's grammar has words
// such as "-10.0.0.0/8" that a flag parser would take for options.
func addWgCommands(root *cobra.Command) {
	type sub struct {
		use, short string
		run        func(*wgEnv, []string) int
	}
	// use is wg's usage line for the command (as `help` shows it).
	usage := func(format string) string {
		return strings.TrimSuffix(strings.TrimPrefix(format, "Usage: %s "), "\n")
	}
	const confArgs = " <interface> <configuration filename>"
	subs := []sub{
		{usage(showUsage) + "\n  wgd show --json [<interface> | all]", "Show the current configuration and device information (wg show)", runShow},
		{"showconf <interface>", "Show the current configuration of an interface in config file form (wg showconf)", runShowconf},
		{usage(setUsage), "Change the current configuration, add peers, remove peers, or change peers (wg set)", runSet},
		{"setconf" + confArgs, "Apply a configuration file to an interface, replacing it (wg setconf)", runSetconfMode(modeSet)},
		{"addconf" + confArgs, "Append a configuration file to an interface (wg addconf)", runSetconfMode(modeAdd)},
		{"syncconf" + confArgs, "Synchronize an interface with a configuration file, disturbing nothing else (wg syncconf)", runSetconfMode(modeSync)},
	}
	for _, s := range subs {
		run := s.run
		root.AddCommand(&cobra.Command{
			Use:                   s.use,
			Short:                 s.short,
			DisableFlagsInUseLine: true,
			DisableFlagParsing:    true,
			SilenceUsage:          true,
			SilenceErrors:         true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runWgCommand(cmd, run, args)
			},
		})
	}
}

// runWgCommand runs one wg-compatible command. Its stderr is held back: on
// failure wg's message becomes the returned error, which main prints once
// (as "wgd: <wg's message>"); on success anything written is passed on.
func runWgCommand(cmd *cobra.Command, run func(*wgEnv, []string) int, args []string) error {
	e := newWgEnv(cmd)
	var msg strings.Builder
	e.Stderr = &msg
	e.Progress = cmd.ErrOrStderr()
	if run(e, args) != 0 {
		if msg.Len() == 0 {
			return errWgFailed
		}
		return errors.New(strings.TrimSuffix(msg.String(), "\n"))
	}
	_, err := io.WriteString(cmd.ErrOrStderr(), msg.String())
	return err
}
