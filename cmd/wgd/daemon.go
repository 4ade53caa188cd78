package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/ipc"
	"github.com/wgdvpn/wgd/tun"
)

// The daemon mode is wireguard-go's command line: `wgd [-f] IFNAME`. In
// the background form the parent returns only once the child holds the TUN
// and answers on the UAPI socket (or has failed), so that a caller such as
// wg-quick may configure the interface, or move it to another namespace, at
// once. The child reports through a pipe passed as fd 3.

const (
	envForeground = "WG_PROCESS_FOREGROUND"
	envReadyFd    = "WGD_READY_FD"
	envNoOffload  = "WGD_NO_OFFLOAD"
	// envTunFd and envUAPIFd hand the daemon a TUN fd and a listening
	// UAPI socket another process opened, as wireguard-go accepts them
	// (a supervisor, or a privileged launcher that drops rights).
	envTunFd   = "WG_TUN_FD"
	envUAPIFd  = "WG_UAPI_FD"
	defaultMTU = 1420
)

// inheritedFd reads an fd number from the environment variable name and
// unsets it (so that hooks and children do not see it); ok is false when
// it is not set.
func inheritedFd(name string) (fd int, ok bool, err error) {
	v, set := os.LookupEnv(name)
	if !set {
		return 0, false, nil
	}
	os.Unsetenv(name)
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return 0, true, fmt.Errorf("%s=%q: not a file descriptor number", name, v)
	}
	if _, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0); err != nil {
		return 0, true, fmt.Errorf("%s=%d: %w", name, n, err)
	}
	return int(n), true, nil
}

// offloadsOff reports whether WGD_NO_OFFLOAD asks for the TUN (checksum,
// TSO, USO) and UDP (GSO, GRO) offloads to stay off: an escape hatch for a
// kernel or driver that mishandles them, and a way to compare.
func offloadsOff(getenv func(string) string) bool {
	switch getenv(envNoOffload) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

func runDaemon(cmd *cobra.Command, args []string, foreground bool) error {
	if len(args) != 1 {
		return cmd.Help()
	}
	name := args[0]
	if os.Getenv(envForeground) == "1" {
		foreground = true
	}
	if !foreground {
		if err := spawnDaemon(cmd, name); err != nil {
			return err
		}
		// wireguard-go says nothing; a person at a terminal who meant a
		// subcommand should learn that a daemon now runs.
		if f, ok := cmd.ErrOrStderr().(*os.File); ok {
			if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
				fmt.Fprintf(f, "wgd: the daemon for interface %s runs in the background; `ip link del %s` stops it\n", name, name)
			}
		}
		return nil
	}
	ready := readyPipe()
	// The log goes to stdout, as wireguard-go's does (`wgd up` keeps its
	// daemon's on stderr with its [#] lines).
	err := serve(cmd.Context(), name, newLogger(name, cmd.OutOrStdout()), ready)
	if err != nil && ready != nil {
		fmt.Fprintf(ready, "%v\n", err)
		ready.Close()
	}
	return err
}

// readyPipe returns the write end of the parent's readiness pipe, if any.
func readyPipe() *os.File {
	if os.Getenv(envReadyFd) == "" {
		return nil
	}
	os.Unsetenv(envReadyFd)
	return os.NewFile(3, "ready")
}

// daemonArgs is the command line of the daemon for interface name: `-f
// NAME`, as wireguard-go's, or `-f -- NAME` when NAME would read as a
// subcommand or a flag (an interface named "show" brought up by `wgd up
// show` ran `wgd show` instead).
func daemonArgs(root *cobra.Command, name string) []string {
	if strings.HasPrefix(name, "-") {
		return []string{"-f", "--", name}
	}
	if c, _, err := root.Find([]string{name}); err == nil && c != root {
		return []string{"-f", "--", name}
	}
	return []string{"-f", name}
}

// spawnDaemon re-executes wgd in the foreground as a detached child and
// waits until it reports ready (an empty line) or an error.
func spawnDaemon(cmd *cobra.Command, name string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("readiness pipe: %w", err)
	}
	defer r.Close()
	child := exec.Command(self, daemonArgs(cmd.Root(), name)...)
	child.Env = append(withoutEnv(os.Environ(), "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", envTunFd, envUAPIFd),
		envForeground+"=1", envReadyFd+"=3")
	child.ExtraFiles = []*os.File{w}
	// A TUN or UAPI socket handed to us goes on to the daemon, renumbered
	// after the readiness pipe (fd 3).
	for _, env := range []string{envTunFd, envUAPIFd} {
		fd, ok, err := inheritedFd(env)
		if err != nil {
			w.Close()
			return err
		}
		if ok {
			f := os.NewFile(uintptr(fd), env)
			defer f.Close()
			child.Env = append(child.Env, fmt.Sprintf("%s=%d", env, 3+len(child.ExtraFiles)))
			child.ExtraFiles = append(child.ExtraFiles, f)
		}
	}
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// As wireguard-go: the daemon keeps the caller's output only when
	// LOG_LEVEL asks for logs (the log goes to stdout). With none or
	// "silent" it holds nothing of the caller's open, so
	// `out=$(wgd wg0 2>&1)` returns at once.
	child.Stdin, child.Stdout, child.Stderr = devnull, devnull, devnull
	if lv := os.Getenv("LOG_LEVEL"); lv != "" && lv != "silent" {
		child.Stdout, child.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
	}
	if err := child.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start daemon: %w", err)
	}
	w.Close()
	// A child that hangs before it is ready must not hang the caller
	// (wg-quick, a boot script): give up after readyTimeout and kill it.
	_ = r.SetReadDeadline(time.Now().Add(readyTimeout))
	msg, err := io.ReadAll(io.LimitReader(r, 4096))
	text := strings.TrimSpace(string(msg))
	if text == "ready" {
		_ = child.Process.Release()
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		_ = child.Process.Kill()
		text = fmt.Sprintf("daemon not ready after %v", readyTimeout)
	}
	_ = child.Wait()
	if text == "" {
		text = "daemon exited before it was ready"
	}
	return errors.New(text)
}

// readyTimeout bounds how long `wgd IFACE` waits for its daemon.
const readyTimeout = 30 * time.Second

// serve runs the daemon in the foreground until a signal, the removal of the
// UAPI socket, the deletion of the TUN, or a device failure. SIGHUP reloads
// the configuration `wgd up` applied, if there is one.
func serve(ctx context.Context, name string, log *slog.Logger, ready *os.File) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startProfile()()
	d, err := startDaemon(ctx, name, log)
	if err != nil {
		return err
	}
	defer d.close()
	if ready != nil {
		fmt.Fprintln(ready, "ready")
		ready.Close()
	}
	d.notify.send("READY=1")
	defer d.notify.send("STOPPING=1")
	return d.wait(ctx, func() {
		err := reloadInterface(context.Background(), d.name, quickIO{stderr: io.Discard})
		switch {
		case errors.Is(err, errNotUp):
			// A bare daemon (wireguard-go's form) has no config file to
			// read again; wireguard-go dies of SIGHUP, we carry on.
			log.Info("SIGHUP ignored: no config to reload (the interface was not brought up by wgd up)", "detail", err)
		case err != nil:
			log.Error("reload on SIGHUP", "err", err)
		}
	})
}

// startProfile starts a CPU profile of the whole daemon run when
// WGD_CPUPROFILE names a file, for performance work; the returned function
// stops it.
func startProfile() func() {
	path := os.Getenv("WGD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// daemon is a running interface: the UAPI listener, the TUN and the engine.
type daemon struct {
	name   string
	log    *slog.Logger
	ln     *ipc.Listener
	tun    *tun.Native
	dev    *device.Device
	srvErr chan error
	notify notifier
	// watchdog is the WATCHDOG=1 interval; 0 when systemd's is off.
	watchdog  time.Duration
	closeOnce sync.Once
}

// startDaemon takes the UAPI socket (refusing one a live daemon owns),
// creates the TUN (see openDevice) and starts the engine and the UAPI
// server.
func startDaemon(ctx context.Context, name string, log *slog.Logger) (*daemon, error) {
	noOffload := offloadsOff(os.Getenv)
	if noOffload {
		log.Info("offloads off", "reason", envNoOffload)
	}
	topts := tun.Options{Offload: !noOffload, Logger: log}
	t, ln, ifname, err := openDevice(name, topts)
	if err != nil {
		return nil, err
	}
	if ifname != name {
		name = ifname
		log = log.With("name", name)
	}
	dev, err := device.New(device.Options{TUN: t, Logger: log, NoUDPOffload: noOffload})
	if err != nil {
		t.Close()
		ln.Close()
		return nil, fmt.Errorf("start device %s: %w", name, err)
	}
	d := &daemon{name: name, log: log, ln: ln, tun: t, dev: dev, srvErr: make(chan error, 1),
		notify: newNotifier(os.Getenv), watchdog: watchdogInterval(os.Getenv, os.Getpid())}
	// The UAPI server outlives ctx (the signal that stops the daemon): a
	// shutdown still talks to it (SaveConfig, PreDown hooks running wg).
	// close stops it by closing ln.
	go func() { d.srvErr <- ln.Serve(context.WithoutCancel(ctx), dev, log) }()
	log.Info("device started", "port", dev.Port(), "tun_offloads", t.Offloads().String(), "udp_offloads", dev.UDPOffloads())
	return d, nil
}

// openDevice opens the daemon's TUN and UAPI socket and returns them with
// the interface's real name. Usually the socket comes first, so that a
// live daemon of this name refuses us before we touch its link. The TUN
// comes first when it names the socket: a template such as wg%d (the
// kernel picks the number) or a TUN handed over in WG_TUN_FD (its own name
// wins over the command line's, as in wireguard-go). WG_UAPI_FD hands over
// the socket. Inherited fds are taken over (closed on error).
func openDevice(name string, topts tun.Options) (*tun.Native, *ipc.Listener, string, error) {
	tunFd, haveTun, err := inheritedFd(envTunFd)
	if err != nil {
		return nil, nil, "", err
	}
	uapiFd, haveUAPI, err := inheritedFd(envUAPIFd)
	if err != nil {
		if haveTun {
			unix.Close(tunFd)
		}
		return nil, nil, "", err
	}
	var t *tun.Native
	switch {
	case haveTun:
		if t, err = tun.FromFd(tunFd, defaultMTU, topts); err != nil {
			err = fmt.Errorf("%s: %w", envTunFd, err)
		}
	case strings.Contains(name, "%"):
		if t, err = tun.CreateWithOptions(name, defaultMTU, topts); err != nil {
			err = fmt.Errorf("create TUN %s: %w", name, err)
		}
	}
	if err != nil {
		if haveUAPI {
			unix.Close(uapiFd)
		}
		return nil, nil, "", err
	}
	if t != nil {
		name = t.Name()
	}
	var ln *ipc.Listener
	if haveUAPI {
		if ln, err = (ipc.ListenConfig{}).ListenFile(os.NewFile(uintptr(uapiFd), envUAPIFd)); err != nil {
			err = fmt.Errorf("%s: %w", envUAPIFd, err)
		}
	} else if ln, err = ipc.Listen(name); err != nil {
		err = fmt.Errorf("UAPI socket for %s: %w", name, err)
	}
	if err != nil {
		if t != nil {
			t.Close()
		}
		return nil, nil, "", err
	}
	if t == nil {
		if t, err = tun.CreateWithOptions(name, defaultMTU, topts); err != nil {
			ln.Close()
			return nil, nil, "", fmt.Errorf("create TUN %s: %w", name, err)
		}
	}
	return t, ln, name, nil
}

// close stops the engine (which closes the TUN, deleting the link) and the
// UAPI server (which removes the socket). It may be called more than once.
func (d *daemon) close() {
	d.closeOnce.Do(func() {
		d.dev.Close()
		d.ln.Close()
		d.log.Info("device stopped", "counters", fmt.Sprintf("%+v", d.dev.Counters()))
	})
}

// wait blocks until a reason to stop: ctx done (a signal), the UAPI socket
// unlinked, the TUN deleted, a device or server failure. It follows MTU
// changes of the link, calls onHUP for each SIGHUP between RELOADING=1 and
// READY=1, and pings systemd's watchdog while nothing is wrong: a stuck
// wait loop (or a stuck onHUP) stops the pings and systemd restarts us.
func (d *daemon) wait(ctx context.Context, onHUP func()) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var watchdog <-chan time.Time
	if d.watchdog > 0 {
		tick := time.NewTicker(d.watchdog)
		defer tick.Stop()
		watchdog = tick.C
	}
	// A reload runs beside the loop, so that the watchdog keeps ticking
	// (a storm of SIGHUPs used to run reload after reload here and starve
	// it past WatchdogSec); SIGHUPs during one are merged into one more.
	var reloading chan struct{} // closed when the running reload ends; nil: none
	again := false
	reload := func() {
		done := make(chan struct{})
		reloading = done
		go func() {
			defer close(done)
			onHUP()
		}()
	}
	defer func() {
		if reloading != nil {
			<-reloading
		}
	}()
	events := d.tun.Events()
	for {
		select {
		case <-watchdog:
			d.notify.send("WATCHDOG=1")
		case <-hup:
			if reloading != nil {
				again = true
				continue
			}
			d.notify.reloading()
			reload()
		case <-reloading:
			reloading = nil
			if again {
				again = false
				reload()
				continue
			}
			d.notify.send("READY=1")
		case ev, ok := <-events:
			if !ok || ev.Kind == tun.EventDeleted {
				d.log.Info("shutting down", "reason", "interface deleted")
				return nil
			}
			if ev.Kind == tun.EventMTU && ev.MTU != d.dev.MTU() {
				d.log.Info("MTU updated", "mtu", ev.MTU)
				d.dev.SetMTU(ev.MTU)
			}
			if ev.Kind == tun.EventUnwatched {
				// The TUN's reads still tell of its deletion.
				d.log.Warn("not following the interface's link changes: MTU changes will not be seen until restart", "err", ev.Err)
				events = nil
			}
		case <-ctx.Done():
			d.log.Info("shutting down", "reason", "signal")
			return nil
		case <-d.ln.Removed():
			d.log.Info("shutting down", "reason", "UAPI socket removed")
			return nil
		case <-d.dev.Done():
			if err := d.dev.Err(); errors.Is(err, tun.ErrDeleted) {
				d.log.Info("shutting down", "reason", "interface deleted")
			} else {
				d.log.Info("shutting down", "reason", err)
			}
			return nil
		case err := <-d.srvErr:
			if err != nil {
				return fmt.Errorf("UAPI server: %w", err)
			}
			return nil
		}
	}
}

// newLogger follows wireguard-go's LOG_LEVEL: verbose (or debug), error,
// silent; the default logs errors and notable events.
func newLogger(name string, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch os.Getenv("LOG_LEVEL") {
	case "verbose", "debug":
		level = slog.LevelDebug
	case "error":
		level = slog.LevelError
	case "silent":
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("interface", name)
}

// notifier sends sd_notify(3) state lines to the service manager named by
// $NOTIFY_SOCKET; without one it does nothing, so callers need not care
// whether they run under systemd.
type notifier struct {
	addr string // socket address, "\x00..." for an abstract one; "" for none
}

// newNotifier reads $NOTIFY_SOCKET through getenv. A leading "@" names an
// abstract socket, as in sd_notify.
func newNotifier(getenv func(string) string) notifier {
	addr := getenv("NOTIFY_SOCKET")
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	return notifier{addr: addr}
}

// send delivers one state line. Failures are ignored, as sd_notify callers
// do: a lost notification must not take the tunnel down.
func (n notifier) send(state string) {
	if n.addr == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}

// reloading is the RELOADING=1 line; systemd wants the CLOCK_MONOTONIC time
// with it, so that it can tell this reload from a later one.
func (n notifier) reloading() {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		n.send("RELOADING=1")
		return
	}
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// watchdogInterval is how often to send WATCHDOG=1: half of $WATCHDOG_USEC,
// as sd_watchdog_enabled(3) advises, or 0 when the watchdog is off or meant
// for another process ($WATCHDOG_PID).
func watchdogInterval(getenv func(string) string, pid int) time.Duration {
	usec, err := strconv.ParseUint(getenv("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 {
		return 0
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// withoutEnv returns env less the variables named; a spawned background
// daemon must not talk to the service manager of the command that started
// it.
func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
