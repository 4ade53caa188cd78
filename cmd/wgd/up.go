package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/wgdvpn/wgd/conf"
	"github.com/wgdvpn/wgd/device"
	"github.com/wgdvpn/wgd/ipc"
	"github.com/wgdvpn/wgd/tun/netcfg"
)

// `wgd up`, `wgd down` and `wgd reload`: wg-quick(8) for Linux, with the
// daemon built in. Every host change goes through tun/netcfg, which prints
// wg-quick's "[#] ..." lines and undoes a half-done `up`.

func newUpCmd() *cobra.Command {
	var foreground bool
	cmd := &cobra.Command{
		Use:   "up [-f] CONFIG_FILE|INTERFACE",
		Short: "Bring up a WireGuard interface from a wg-quick config (wg-quick up)",
		Args:  oneTarget,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), args[0], foreground, newQuickIO(cmd))
		},
	}
	cmd.Flags().BoolVarP(&foreground, "foreground", "f", false,
		"run the daemon in this process and take the interface down on SIGTERM (for systemd Type=notify)")
	return cmd
}

func newDownCmd() *cobra.Command {
	var onlyStale bool
	cmd := newQuickCmd("down", "Take a WireGuard interface down and undo what up did (wg-quick down)",
		func(cmd *cobra.Command, t quickTarget) error {
			if onlyStale && isWireGuard(t.iface) {
				// Someone's live interface (a start that failed with
				// "already exists"): not ours to take down.
				return nil
			}
			if onlyStale {
				_, lerr := netlink.LinkByName(t.iface)
				if _, serr := readState(t.iface); serr != nil && lerr != nil {
					// After a clean stop: nothing left, and nothing
					// to say in the journal on every stop.
					return nil
				}
			}
			return runDown(cmd.Context(), t, newQuickIO(cmd), nil)
		})
	cmd.Flags().BoolVar(&onlyStale, "only-stale", false,
		"only clean up after a daemon that is gone; leave an interface whose daemon answers alone (for ExecStopPost)")
	return cmd
}

func newSaveCmd() *cobra.Command {
	return newQuickCmd("save", "Write the running configuration back to the config file (wg-quick save)",
		func(cmd *cobra.Command, t quickTarget) error { return runSave(t, newQuickIO(cmd)) })
}

func newReloadCmd() *cobra.Command {
	return newQuickCmd("reload", "Apply a changed config file without dropping sessions: peers, addresses, MTU, routes, DNS",
		func(cmd *cobra.Command, t quickTarget) error {
			return reloadInterface(cmd.Context(), t.iface, newQuickIO(cmd))
		})
}

// oneTarget wants exactly one CONFIG_FILE|INTERFACE argument and says how
// to call the command otherwise, as wg-quick prints its usage.
func oneTarget(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: %s", cmd.UseLine())
	}
	return nil
}

// newQuickCmd builds a `wgd VERB CONFIG_FILE|INTERFACE` command that needs
// CAP_NET_ADMIN.
func newQuickCmd(verb, short string, run func(*cobra.Command, quickTarget) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " CONFIG_FILE|INTERFACE",
		Short: short,
		Args:  oneTarget,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := resolveTarget(args[0])
			if err != nil {
				return err
			}
			if err := checkNetAdmin(); err != nil {
				return fmt.Errorf("%s %s: %w", verb, t.iface, err)
			}
			return run(cmd, t)
		},
	}
}

// quickIO is where up/down/reload write: "[#]" lines and warnings on
// stderr, the output of hooks and tools on stdout and stderr, as wg-quick.
type quickIO struct {
	stdout, stderr io.Writer
	cmd            *cobra.Command // nil when run from the daemon (SIGHUP)
	// staleAtUp says down runs for up, to clear what an earlier up left.
	staleAtUp bool
}

func newQuickIO(cmd *cobra.Command) quickIO {
	return quickIO{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), cmd: cmd}
}

// confErr is up's and reload's error for a file whose values wg's parsing
// refused (an endpoint that does not resolve, say) after printing why: wg
// says "Configuration parsing error", and so does this, with the file.
func confErr(path string, err error) error {
	if errors.Is(err, errSetArgs) {
		return fmt.Errorf("%s: Configuration parsing error", path)
	}
	return fmt.Errorf("config %s: %w", path, err)
}

// runner is the netcfg runner for the config file at path (hooks see it as
// CONFIG_FILE).
func (q quickIO) runner(path string) *netcfg.Runner {
	stdout := q.stdout
	if stdout == nil {
		stdout = q.stderr
	}
	return &netcfg.Runner{
		Print:      func(format string, args ...any) { fmt.Fprintf(q.stderr, format+"\n", args...) },
		Stdout:     stdout,
		Stderr:     q.stderr,
		ConfigFile: path,
	}
}

// env is the wg-compatible environment (UAPI backend, resolver) for
// turning a config into a transaction.
func (q quickIO) env() *wgEnv {
	if q.cmd != nil {
		e := newWgEnv(q.cmd)
		e.Stderr = q.stderr
		return e
	}
	e := &wgEnv{Stdout: io.Discard, Stderr: q.stderr, Getenv: os.Getenv, Now: time.Now, Sleep: time.Sleep, Backend: ipcBackend{}}
	e.Resolver = net.DefaultResolver
	return e
}

func runUp(ctx context.Context, arg string, foreground bool, q quickIO) error {
	if ctx == nil {
		ctx = context.Background()
	}
	t, err := resolveTarget(arg)
	if err != nil {
		return configError(foreground, err)
	}
	if err := checkNetAdmin(); err != nil {
		return fmt.Errorf("up %s: %w", t.iface, err)
	}
	c, data, err := loadConfig(t, q.stderr)
	if err != nil {
		return configError(foreground, err)
	}
	unlock, err := lockInterface(t.iface)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := netlink.LinkByName(t.iface); err == nil {
		return fmt.Errorf("`%s' already exists", t.iface)
	}
	if _, err := readState(t.iface); err == nil {
		// An earlier up of this name whose interface is gone without a
		// down (its daemon was killed): take away what it left (policy
		// rules, firewall tables, DNS), as down would, so that this up
		// does not add them a second time.
		stale := q
		stale.staleAtUp = true
		if err := runDownLocked(ctx, t, stale, nil); err != nil {
			return err
		}
	}
	e := q.env()
	cfg, err := confToDevice(e, conf.Strip(c), true)
	if err != nil {
		return confErr(t.path, err)
	}
	st := &quickState{ConfigPath: t.path, Settings: settingsFor(t.iface, c, cfg), SaveConfig: c.Interface.SaveConfig}
	var d *daemon
	// SIGINT and SIGTERM stop the steps and undo them (wg-quick traps
	// them and runs del_if); killed by them halfway, up left addresses,
	// rules and firewall tables behind with no record for down. SIGHUP
	// would kill as well: until the foreground daemon's wait takes it as
	// "reload", it is dropped.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	dev := quickDevice(t.iface, q, func() *daemon { return d })
	var recordErr error
	dev.Create = func(ctx context.Context) error {
		fmt.Fprintf(q.stderr, "[#] wgd %s\n", t.iface)
		if foreground {
			var err error
			d, err = startDaemon(ctx, t.iface, newLogger(t.iface, q.stderr))
			if err != nil {
				return err
			}
		} else if err := spawnDaemon(q.cmd, t.iface); err != nil {
			return err
		}
		fmt.Fprintf(q.stderr, "[#] wg setconf %s /dev/fd/63\n", t.iface)
		if err := e.Backend.Set(t.iface, cfg); err != nil {
			// The link exists but netcfg's undo only covers a Create
			// that succeeded: take it down here.
			if d != nil {
				d.close()
				d = nil
			}
			fmt.Fprintf(q.stderr, "[#] ip link delete dev %s\n", t.iface)
			_ = deleteInterface(t.iface)
			//lint:ignore ST1005 wg's own message, word for word
			return fmt.Errorf("Unable to modify interface: %s", errnoText(err))
		}
		// The record goes down before the addresses, routes and rules:
		// if up is killed outright from here on (SIGKILL, a unit's start
		// timeout, which takes the daemon too), down still finds what
		// to take away. Taking away what never came is harmless.
		if recordErr = writeState(t.iface, st); recordErr != nil {
			fmt.Fprintf(q.stderr, "Warning: %v\n", recordErr)
		}
		return nil
	}
	r := q.runner(t.path)
	r.Vars = scriptVars(data, c, st.Settings)
	if _, err := r.Up(ctx, st.Settings, dev); err != nil {
		if d != nil {
			d.close()
		}
		removeState(t.iface) // Up undid what it did
		return err
	}
	if err := writeState(t.iface, st); err != nil && recordErr == nil { // again: the link's identity is final now
		fmt.Fprintf(q.stderr, "Warning: %v\n", err)
	}
	if !foreground {
		return nil
	}
	unlock() // reload and the final down take it again
	return runForeground(ctx, t, d, q)
}

// runForeground keeps an in-process daemon (`wgd up -f`) until SIGTERM or
// SIGINT, reloading on SIGHUP, then takes the interface down.
func runForeground(ctx context.Context, t quickTarget, d *daemon, q quickIO) error {
	mine, _ := readState(t.iface) // written by this up, just before
	d.notify.send("READY=1")
	err := d.wait(ctx, func() {
		if err := reloadInterface(context.Background(), t.iface, q); err != nil {
			d.log.Error("reload", "err", err)
		}
	})
	d.notify.send("STOPPING=1")
	if _, lerr := netlink.LinkByName(t.iface); lerr != nil {
		// The link went (`wgd down` or `ip link del` from elsewhere):
		// stop answering on the UAPI socket before taking the lock. A
		// `wgd down` holding it waits for the socket to go quiet, and
		// the teardown waits for the lock: 6 s for both.
		d.close()
		unlock, lerr := lockInterface(t.iface)
		if lerr != nil {
			return errors.Join(err, lerr)
		}
		defer unlock()
		// Only `ip link del` leaves this up's record, and what it names,
		// to clean up: a `wgd down` took the record with everything else,
		// and a record of another link is a new up's.
		if mine != nil {
			st, serr := readState(t.iface)
			if serr != nil || st.Ifindex != mine.Ifindex || st.NetnsIno != mine.NetnsIno {
				return err
			}
		}
		return errors.Join(err, runDownLocked(context.Background(), t, q, d))
	}
	downErr := runDown(context.Background(), t, q, d)
	d.close()
	return errors.Join(err, downErr)
}

// quickDevice reaches the WireGuard device for netcfg: deleting the link
// (which stops the daemon) and reading or setting its fwmark over UAPI.
// own returns the daemon of this process (`wgd up -f`) or nil: that one is
// closed directly, since it cannot notice its own link going while this
// goroutine waits for its socket to disappear.
func quickDevice(iface string, q quickIO, own func() *daemon) netcfg.Device {
	return netcfg.Device{
		Delete: func() error {
			if d := own(); d != nil {
				d.close()
			}
			return deleteInterface(iface)
		},
		SetFwMark: func(mark uint32) error { // netcfg prints the "[#]" line
			return ipcBackend{}.Set(iface, &device.Config{FwMark: &mark})
		},
		FwMark: func() (uint32, error) {
			info, _, err := ipcBackend{}.Get(iface)
			return info.FwMark, err
		},
	}
}

// deleteInterface removes the TUN link, which makes the daemon exit, and
// waits (bounded) for its UAPI socket to go; a socket left by a daemon that
// was killed is removed.
func deleteInterface(iface string) error {
	if link, err := netlink.LinkByName(iface); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			return fmt.Errorf("delete %s: %w", iface, err)
		}
	}
	path := ipc.SocketPath(iface)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		c, err := ipc.Dial(iface)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := ipc.Dial(iface); err != nil {
		_ = os.Remove(path) // stale: nobody answers
	} else {
		c.Close()
	}
	return nil
}

// runDown takes the interface down with what `up` recorded, so that it also
// cleans up after a daemon that was killed. Without a record it uses the
// config file, as wg-quick does, if the interface exists; if it does not,
// the interface is already down and there is nothing to do (a stale UAPI
// socket aside), which makes down idempotent. An interface that is not
// WireGuard is refused, as wg-quick refuses it. own is this process's
// daemon for `wgd up -f`, else nil.
//
// The hooks and SaveConfig come from the config file as it is now when it
// can be read (wg-quick parses it again at down); what to take away
// (addresses, routes, rules, DNS) comes from the record of what up did.
func runDown(ctx context.Context, t quickTarget, q quickIO, own *daemon) error {
	if ctx == nil {
		ctx = context.Background()
	}
	unlock, err := lockInterface(t.iface)
	if err != nil {
		return err
	}
	defer unlock()
	return runDownLocked(ctx, t, q, own)
}

// runDownLocked is runDown with the interface lock held.
func runDownLocked(ctx context.Context, t quickTarget, q quickIO, own *daemon) error {
	_, lerr := netlink.LinkByName(t.iface)
	present := lerr == nil
	if present && own == nil && !isWireGuard(t.iface) {
		return fmt.Errorf("`%s' is not a WireGuard interface", t.iface)
	}
	st, err := readState(t.iface)
	if err == nil && !present && own == nil && daemonAnswers(t.iface, 2*time.Second) {
		// The daemon still answers after its link would have stopped it:
		// the link is in another network namespace (down was run in the
		// wrong one). Keep the record.
		return fmt.Errorf("`%s' is not in this network namespace, but its daemon is running: run down where it is", t.iface)
	}
	var saved netcfg.Settings // what SaveConfig writes
	var vars *netcfg.ScriptVars
	if err != nil {
		if !present {
			_ = deleteInterface(t.iface) // a stale socket
			if err := missingConfig(t.path); err != nil {
				// No file, no link, no record: a mistyped name,
				// most likely. wg-quick's words and exit status.
				return err
			}
			fmt.Fprintf(q.stderr, "Warning: `%s' is not up: nothing to take down\n", t.iface)
			return nil
		}
		c, data, lerr := loadConfig(t, q.stderr)
		if lerr != nil {
			return lerr
		}
		st = &quickState{ConfigPath: t.path, Settings: settingsFor(t.iface, c, &device.Config{}), SaveConfig: c.Interface.SaveConfig}
		vars = scriptVars(data, c, st.Settings)
	} else {
		switch {
		case !present && q.staleAtUp:
			fmt.Fprintf(q.stderr, "Warning: an earlier up of `%s' was not taken down (its daemon stopped, or another tool took it down): removing what it left behind\n", t.iface)
		case !present:
			fmt.Fprintf(q.stderr, "Warning: `%s' is gone (its daemon stopped?): removing what up left behind\n", t.iface)
		}
		if !t.named {
			st.ConfigPath = t.path // the file named now, as wg-quick reads it
		}
		// As wg-quick's down: the file is read again (with the
		// world-accessible warning); one that no longer parses leaves the
		// hooks and SaveConfig recorded at up.
		warnWorldAccessible(st.ConfigPath, q.stderr)
		if c, data, err := conf.LoadText(st.ConfigPath); err == nil {
			saved = fileKeys(st.Settings, c)
			fileHooks(&st.Settings, c)
			st.SaveConfig = c.Interface.SaveConfig
			vars = scriptVars(data, c, settingsFor(t.iface, c, &device.Config{}))
		}
	}
	if saved.Interface == "" {
		saved = st.Settings
	}
	if vars == nil {
		vars = &netcfg.ScriptVars{Settings: st.Settings, SaveConfig: st.SaveConfig, Program: programName()}
	}
	dev := quickDevice(t.iface, q, func() *daemon { return own })
	dev.Going = own != nil
	if st.SaveConfig && present {
		dev.Save = func() error {
			info, peers, err := (ipcBackend{}).Get(t.iface)
			if err != nil {
				return err
			}
			fmt.Fprintf(q.stderr, "[#] saving configuration to %s\n", st.ConfigPath)
			return saveConfig(st.ConfigPath, t.iface, saved, true, info, peers)
		}
	}
	r := q.runner(st.ConfigPath)
	r.Vars = vars
	err = r.Down(ctx, st.Settings, dev)
	if _, lerr := netlink.LinkByName(t.iface); lerr == nil && own == nil {
		return err // a failing PreDown (or a link that would not go): still up
	}
	_ = deleteInterface(t.iface)
	removeState(t.iface)
	return err
}

// daemonAnswers reports whether iface's UAPI socket still answers after
// wait: a daemon whose link was just deleted takes a moment to go.
func daemonAnswers(iface string, wait time.Duration) bool {
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		c, err := ipc.Dial(iface)
		if err != nil {
			return false
		}
		c.Close()
		if time.Now().After(deadline) {
			return true
		}
	}
}

// fileHooks takes the hooks from the config file as it is now.
func fileHooks(s *netcfg.Settings, c *conf.Config) {
	ifc := &c.Interface
	s.PreUp, s.PostUp, s.PreDown, s.PostDown = ifc.PreUp, ifc.PostUp, ifc.PreDown, ifc.PostDown
}

// fileKeys is s with the wg-quick keys SaveConfig writes back (hooks, DNS,
// Table, MTU) taken from the config file as it is now, so that saving
// keeps what was edited in the file while the interface was up.
func fileKeys(s netcfg.Settings, c *conf.Config) netcfg.Settings {
	fileHooks(&s, c)
	ifc := &c.Interface
	s.DNS, s.DNSSearch, s.Table, s.MTU = ifc.DNS, ifc.DNSSearch, ifc.Table, ifc.MTU
	return s
}

// isWireGuard reports whether iface is a WireGuard interface: a userspace
// one whose UAPI socket answers, or the kernel's.
func isWireGuard(iface string) bool {
	if c, err := ipc.Dial(iface); err == nil {
		c.Close()
		return true
	}
	link, err := netlink.LinkByName(iface)
	return err == nil && link.Type() == "wireguard"
}

// runSave writes the running configuration of a WireGuard interface back to
// its config file (wg-quick save).
func runSave(t quickTarget, q quickIO) error {
	if !isWireGuard(t.iface) {
		if _, err := os.Stat(t.path); err != nil {
			// wg-quick reads the file first, so a typo says this.
			return fmt.Errorf("`%s' does not exist", t.path)
		}
		return fmt.Errorf("`%s' is not a WireGuard interface", t.iface)
	}
	path := t.path
	var s netcfg.Settings
	if st, err := readLiveState(t.iface); err == nil {
		s = st.Settings
		if t.named {
			path = st.ConfigPath
		}
	}
	c, _, err := loadConfig(quickTarget{iface: t.iface, path: path}, q.stderr)
	if err != nil {
		return err
	}
	s = fileKeys(s, c)
	s.Interface = t.iface
	info, peers, err := (ipcBackend{}).Get(t.iface)
	if err != nil {
		return fmt.Errorf("save %s: %w", t.iface, err)
	}
	fmt.Fprintf(q.stderr, "[#] saving configuration to %s\n", path)
	return saveConfig(path, t.iface, s, c.Interface.SaveConfig, info, peers)
}

// reloadInterface applies the config file again without dropping sessions:
// the peers through a syncconf-style diff, then addresses, MTU, routes and
// DNS through netcfg.Reload.
func reloadInterface(ctx context.Context, iface string, q quickIO) error {
	if ctx == nil {
		ctx = context.Background()
	}
	unlock, err := lockInterface(iface)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := readLiveState(iface)
	switch {
	case errors.Is(err, errStaleState):
		return fmt.Errorf("reload %s: %w: %w", iface, errNotUp, err)
	case err != nil:
		return fmt.Errorf("reload %s: %w (no record of it)", iface, errNotUp)
	}
	t := quickTarget{iface: iface, path: st.ConfigPath}
	c, _, err := loadConfig(t, q.stderr)
	if err != nil {
		return err
	}
	e := q.env()
	cfg, err := confToDevice(e, conf.Strip(c), true)
	if err != nil {
		return confErr(t.path, err)
	}
	_, current, err := e.Backend.Get(iface)
	if err != nil {
		return fmt.Errorf("reload %s: %w", iface, err)
	}
	syncDiff(cfg, current)
	if c.Interface.ListenPort == 0 && !c.Interface.ZeroListenPort {
		// No ListenPort in the file: keep the port the daemon has.
		// syncconf would pick a new random one on every reload, and a
		// peer behind NAT or a stateful firewall could not reach this
		// side until it sent again from the new port.
		cfg.ListenPort = nil
	}
	fileMark := c.Interface.FwMark != 0 || c.Interface.ZeroFwMark
	if !fileMark {
		// A file without FwMark leaves the mark to up, which makes it a
		// full tunnel's routing table (as wg-quick does): the policy
		// rules send everything without that mark into the tunnel.
		// Turned off here, as syncconf would, the tunnel's own
		// datagrams would loop back into it.
		cfg.FwMark = nil
	}
	fmt.Fprintf(q.stderr, "[#] wg syncconf %s /dev/fd/63\n", iface)
	if err := e.Backend.Set(iface, cfg); err != nil {
		return fmt.Errorf("reload %s: %w", iface, err)
	}
	next := &quickState{ConfigPath: t.path, Settings: settingsFor(iface, c, cfg), SaveConfig: c.Interface.SaveConfig}
	if err := q.runner(t.path).Reload(ctx, st.Settings, next.Settings, quickDevice(iface, q, func() *daemon { return nil })); err != nil {
		return fmt.Errorf("reload %s: %w", iface, err)
	}
	if !fileMark && netcfg.FullTunnel(st.Settings) && !netcfg.FullTunnel(next.Settings) {
		// No longer a full tunnel: the mark up set goes with its rules,
		// as a fresh up would leave none.
		if info, _, err := e.Backend.Get(iface); err == nil && info.FwMark != 0 {
			fmt.Fprintf(q.stderr, "[#] wg set %s fwmark 0\n", iface)
			zero := uint32(0)
			if err := e.Backend.Set(iface, &device.Config{FwMark: &zero}); err != nil {
				return fmt.Errorf("reload %s: %w", iface, err)
			}
		}
	}
	return writeState(iface, next)
}

// errConfig marks an error of `up --foreground` that a restart cannot
// mend: the configuration file is missing or invalid. It exits with status
// 78 (EX_CONFIG), which the systemd unit lists in RestartPreventExitStatus,
// so that the journal says it once instead of once per restart until the
// start limit. Without --foreground, up exits 1, as wg-quick does.
type errConfig struct{ err error }

func (e errConfig) Error() string { return e.err.Error() }
func (e errConfig) Unwrap() error { return e.err }

// exitConfig is the exit status of an errConfig (sysexits.h EX_CONFIG).
const exitConfig = 78

func configError(foreground bool, err error) error {
	if !foreground {
		return err
	}
	return errConfig{err}
}
