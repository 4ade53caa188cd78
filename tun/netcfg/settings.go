// Package netcfg configures the host network around a WireGuard interface the
// way wg-quick(8) does on Linux: addresses, MTU, routes, the policy rules of a
// full tunnel, DNS and the Pre/Post Up/Down hooks. It talks netlink directly
// instead of running ip(8), prints the same "[#] ..." lines wg-quick prints,
// and can undo everything it did, so that a failed up leaves the host as it
// found it.
//
// The package does not know the config file format: the caller converts its
// parsed configuration into Settings.
package netcfg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"

	"github.com/vishvananda/netlink"
)

// Sentinel errors, wrapped with the failing step so that callers can both
// print a useful message and branch on the reason.
var (
	// ErrNoLink means the interface to configure does not exist.
	ErrNoLink = errors.New("interface does not exist")
	// ErrHook means a PreUp/PostUp/PreDown/PostDown command exited non-zero.
	ErrHook = errors.New("hook failed")
	// ErrNoDNSManager means DNS was asked for but neither resolvconf nor
	// resolvectl is installed.
	ErrNoDNSManager = errors.New("neither resolvconf nor resolvectl found")
	// ErrBadTable means Table is neither auto, off, a number nor a known name.
	ErrBadTable = errors.New("unknown routing table")
	// ErrNoFwMarkSetter means a full tunnel needs a fwmark on the device but
	// the caller gave no way to set one.
	ErrNoFwMarkSetter = errors.New("no way to set the device fwmark")
)

// Settings is what wg-quick reads from the [Interface] section, plus the two
// facts it asks `wg show` for: the allowed IPs of all peers and the resolved
// endpoint addresses.
type Settings struct {
	Interface  string
	Addresses  []netip.Prefix
	MTU        int    // 0 means wg-quick's automatic rule.
	Table      string // "", "auto", "off", a number, or a name from rt_tables.
	FwMark     uint32 // The device's fwmark from the config; 0 means none.
	DNS        []netip.Addr
	DNSSearch  []string
	PreUp      []string
	PostUp     []string
	PreDown    []string
	PostDown   []string
	AllowedIPs []netip.Prefix // The union over all peers.
	Endpoints  []netip.Addr   // Resolved peer endpoints, for the MTU rule.
}

// Printer prints one "[#] ..." line; the CLI points it at stderr.
type Printer func(format string, args ...any)

// Device is how netcfg reaches the WireGuard device itself, which another
// package runs. Every field is optional; what is missing is skipped.
type Device struct {
	// Create brings the interface into existence and loads its peers
	// (wg-quick's add_if and set_config). Up calls it after PreUp.
	Create func(ctx context.Context) error
	// Delete removes the interface (wg-quick's del_if "ip link delete").
	Delete func() error
	// SetFwMark sets the device fwmark, needed for a full tunnel when the
	// config has none ("wg set IFACE fwmark N").
	SetFwMark func(mark uint32) error
	// FwMark reads the device fwmark back, so that Down finds the rules of a
	// full tunnel whose mark was chosen automatically.
	FwMark func() (uint32, error)
	// Save, if set, writes the running configuration back to the config
	// file (wg-quick's SaveConfig); Down calls it after the PreDown hooks,
	// before anything is taken down, as wg-quick does.
	Save func() error
	// Going says the device disappears whatever Down does (its daemon is
	// exiting): a failing PreDown hook then does not stop the teardown.
	Going bool
}

// Runner holds the host-facing knobs: the netlink handle, where output goes,
// and the external commands, all replaceable so that tests can run in a
// namespace with fake tools.
type Runner struct {
	// Handle is the netlink handle to use; nil means the current namespace.
	Handle *netlink.Handle
	// Print receives the "[#] ..." lines; nil discards them.
	Print Printer
	// Stdout and Stderr receive the output of hooks and tools; nil means
	// the process's own.
	Stdout, Stderr io.Writer
	// Shell runs hooks (a bash, since Vars are bash arrays); nil means
	// {"bash", "-e", "-o", "pipefail", "-c"}:
	// wg-quick evaluates a hook in a subshell of its own script, which runs
	// under set -e -o pipefail, so a failing command inside a hook fails it.
	Shell []string
	// ConfigFile is the config's path, given to hooks as CONFIG_FILE (with
	// INTERFACE and LC_ALL=C), the wg-quick variables hooks use most.
	ConfigFile string
	// Vars, if set, are wg-quick's other script variables, set in front
	// of every hook.
	Vars *ScriptVars
	// Resolvconf, Resolvectl and Nft are argv prefixes for the tools; nil
	// means the name looked up in PATH through LookPath.
	Resolvconf, Resolvectl, Nft []string
	// Iptables, if set, is an argv prefix to which the iptables tool's
	// name (iptables-restore, ip6tables-save, ...) is appended; nil means
	// each name looked up through LookPath. They are used when nft is
	// absent, as wg-quick does.
	Iptables []string
	// LookPath finds tools; nil means exec.LookPath. A failure means absent.
	LookPath func(name string) (string, error)
	// InterfaceOrder is resolvconf's interface-order file, which decides the
	// "tun." prefix; "" means /etc/resolvconf/interface-order.
	InterfaceOrder string
	// RTTables lists the files that name routing tables; nil means the
	// iproute2 defaults.
	RTTables []string
	// WriteSysctl sets a sysctl such as "net.ipv4.conf.all.src_valid_mark";
	// nil means writing /proc/sys.
	WriteSysctl func(name, value string) error
	// Log receives debug details; nil discards them.
	Log *slog.Logger
}

func (r *Runner) handle() *netlink.Handle {
	if r.Handle != nil {
		return r.Handle
	}
	return &netlink.Handle{}
}

func (r *Runner) printf(format string, args ...any) {
	if r.Print != nil {
		r.Print(format, args...)
	}
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) stdout() io.Writer {
	if r.Stdout != nil {
		return r.Stdout
	}
	return os.Stdout
}

func (r *Runner) stderr() io.Writer {
	if r.Stderr != nil {
		return r.Stderr
	}
	return os.Stderr
}

// tool returns the argv prefix for an external command, or nil when the tool
// is not installed.
func (r *Runner) tool(override []string, name string) []string {
	if override != nil {
		return override
	}
	look := r.LookPath
	if look == nil {
		look = exec.LookPath
	}
	path, err := look(name)
	if err != nil {
		return nil
	}
	return []string{path}
}

func (r *Runner) writeSysctl(name, value string) error {
	if r.WriteSysctl != nil {
		return r.WriteSysctl(name, value)
	}
	return writeProcSys(name, value)
}

// StepError says which step failed, in the words of the "[#]" line, so that
// "add address 198.18.0.1/24 to wg0: file exists" reaches the user.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %v", e.Step, e.Err) }

// Unwrap exposes the cause to errors.Is.
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(step string, err error) error {
	if err == nil {
		return nil
	}
	return &StepError{Step: step, Err: err}
}

// FullTunnel reports whether Up routes a default route of s through
// wg-quick's policy rules (Table auto and an AllowedIPs prefix of length
// 0). Then the device's fwmark, set by Up when the config gives none, is the
// routing table those rules exempt.
func FullTunnel(s Settings) bool {
	if s.Table != "" && s.Table != "auto" {
		return false
	}
	for _, p := range s.AllowedIPs {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}
