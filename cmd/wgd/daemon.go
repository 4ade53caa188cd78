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
	"strings"
	"syscall"

	"github.com/spf13/cobra"

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
	defaultMTU    = 1420
)

func runDaemon(cmd *cobra.Command, args []string, foreground bool) error {
	if len(args) != 1 {
		return cmd.Help()
	}
	name := args[0]
	if os.Getenv(envForeground) == "1" {
		foreground = true
	}
	if !foreground {
		return spawnDaemon(cmd, name)
	}
	ready := readyPipe()
	err := serve(cmd.Context(), name, newLogger(name, cmd.ErrOrStderr()), ready)
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
	child := exec.Command(self, "-f", name)
	child.Env = append(os.Environ(), envForeground+"=1", envReadyFd+"=3")
	child.ExtraFiles = []*os.File{w}
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	child.Stdin, child.Stdout = devnull, devnull
	if os.Getenv("LOG_LEVEL") == "" {
		child.Stderr = devnull
	} else {
		child.Stderr = cmd.ErrOrStderr()
	}
	if err := child.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start daemon: %w", err)
	}
	w.Close()
	msg, _ := io.ReadAll(io.LimitReader(r, 4096))
	text := strings.TrimSpace(string(msg))
	if text == "ready" {
		_ = child.Process.Release()
		return nil
	}
	_ = child.Wait()
	if text == "" {
		text = "daemon exited before it was ready"
	}
	return errors.New(text)
}

// serve runs the daemon in the foreground until a signal, the removal of the
// UAPI socket, the deletion of the TUN, or a device failure.
func serve(ctx context.Context, name string, log *slog.Logger, ready *os.File) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("WGD_CPUPROFILE"); path != "" {
		// A CPU profile of the whole daemon run, for performance work.
		if f, err := os.Create(path); err == nil {
			defer f.Close()
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	ln, err := ipc.Listen(name)
	if err != nil {
		return fmt.Errorf("UAPI socket for %s: %w", name, err)
	}
	defer ln.Close()
	t, err := tun.Create(name, defaultMTU)
	if err != nil {
		return fmt.Errorf("create TUN %s: %w", name, err)
	}
	dev, err := device.New(device.Options{TUN: t, Logger: log})
	if err != nil {
		t.Close()
		return fmt.Errorf("start device %s: %w", name, err)
	}
	defer dev.Close()
	srvErr := make(chan error, 1)
	go func() { srvErr <- ln.Serve(ctx, dev, log) }()
	log.Info("device started", "interface", name, "port", dev.Port())
	if ready != nil {
		fmt.Fprintln(ready, "ready")
		ready.Close()
	}
	notifySystemd("READY=1")
	defer notifySystemd("STOPPING=1")
	err = waitDaemon(ctx, log, ln, t, dev, srvErr)
	log.Info("device stopped", "counters", fmt.Sprintf("%+v", dev.Counters()))
	return err
}

// waitDaemon blocks until a reason to stop: a signal, the UAPI socket
// unlinked, the TUN deleted, a device or server failure. It follows MTU
// changes of the link on the way.
func waitDaemon(ctx context.Context, log *slog.Logger, ln *ipc.Listener, t *tun.Native, dev *device.Device, srvErr <-chan error) error {
	events := t.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok || ev.Kind == tun.EventDeleted {
				log.Info("shutting down", "reason", "interface deleted")
				return nil
			}
			if ev.Kind == tun.EventMTU {
				dev.SetMTU(ev.MTU)
			}
			continue
		case <-ctx.Done():
			log.Info("shutting down", "reason", "signal")
		case <-ln.Removed():
			log.Info("shutting down", "reason", "UAPI socket removed")
		case <-dev.Done():
			if err := dev.Err(); err != nil {
				log.Info("shutting down", "reason", err)
			}
		case err := <-srvErr:
			if err != nil {
				return fmt.Errorf("UAPI server: %w", err)
			}
		}
		return nil
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

// notifySystemd sends a sd_notify(3) state line when NOTIFY_SOCKET is set.
func notifySystemd(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
