package netcfg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// command is an external program to run: its argv and what to feed it.
type command struct {
	argv  []string
	stdin string
	env   []string   // nil: the process's own
	extra []*os.File // fds 3, 4, ... of the child (nil entries: closed)
	// ownStdin gives the child this process's standard input (hooks, as
	// wg-quick's read the caller's); otherwise stdin or /dev/null.
	ownStdin bool
}

// String is the "[#]" form of the command: argv joined by spaces, as
// wg-quick's cmd() echoes "$*", with the program's name as wg-quick writes
// it (nft, not the /usr/sbin/nft found on the PATH).
func (c command) String() string {
	if len(c.argv) == 0 {
		return ""
	}
	return strings.Join(append([]string{filepath.Base(c.argv[0])}, c.argv[1:]...), " ")
}

// run executes c with output passed through; the error carries the exit
// status.
func (r *Runner) run(ctx context.Context, c command) error {
	if len(c.argv) == 0 {
		return fmt.Errorf("empty command")
	}
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Stdout = r.stdout()
	cmd.Stderr = r.stderr()
	cmd.Env = c.env
	cmd.ExtraFiles = c.extra
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
	} else if c.ownStdin {
		cmd.Stdin = os.Stdin
	}
	return cmd.Run()
}

// output executes c and returns its standard output.
func (r *Runner) output(ctx context.Context, c command) (string, error) {
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Stderr = r.stderr()
	out, err := cmd.Output()
	return string(out), err
}

// expandHook replaces %i with the interface name, as wg-quick's
// "${hook//%i/$INTERFACE}" does; nothing else is special.
func expandHook(hook, iface string) string {
	return strings.ReplaceAll(hook, "%i", iface)
}

// runHooks runs each hook through the shell in order, printing it first,
// and stops at the first failure as wg-quick (set -e) does.
func (r *Runner) runHooks(ctx context.Context, phase, iface string, hooks []string) error {
	shell := r.Shell
	if shell == nil {
		shell = []string{"bash", "-e", "-o", "pipefail", "-c"}
	}
	if len(hooks) == 0 {
		return nil
	}
	env := r.hookEnv(iface)
	// The script variables hold the keys (WG_CONFIG is the file's wg
	// part): they reach bash through a memfd on fd 9 that it sources and
	// closes before the hook runs, never through its arguments, which any
	// local user can read in ps, nor its environment, which the hook's
	// children would inherit (and which caps one string at 128 KiB).
	var extra []*os.File
	lead := ""
	if r.Vars != nil {
		f, err := memFile("wgd-hook-vars", r.Vars.prelude(iface, r.ConfigFile))
		if err != nil {
			return stepErr(phase+" hooks", fmt.Errorf("%w: script variables: %w", ErrHook, err))
		}
		defer f.Close()
		var done func()
		extra, done = passThrough(varsFd)
		defer done()
		extra = append(extra, f)
		lead = fmt.Sprintf(". /dev/fd/%d; exec %d<&-; ", varsFd, varsFd)
	}
	for _, h := range hooks {
		h = expandHook(h, iface)
		r.printf("[#] %s", h)
		argv := append(append([]string(nil), shell...), lead+h)
		if err := r.run(ctx, command{argv: argv, env: env, extra: extra, ownStdin: true}); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				// Killed because the run was interrupted (SIGINT,
				// SIGTERM), not because it failed on its own.
				err = fmt.Errorf("interrupted (%w): %w", cerr, err)
			}
			return stepErr(phase+" hook "+quote(h), fmt.Errorf("%w: %w", ErrHook, err))
		}
	}
	return nil
}

// varsFd is the child's descriptor for the script variables: high enough
// that the descriptors a caller gives wgd for its hooks (`wgd up wg0
// 3>log`, PostUp = echo ... >&3) pass through, as they do in wg-quick.
const varsFd = 9

// passThrough returns the child's descriptors 3 to below n: the ones this
// process inherited open (not close-on-exec: Go opens all of its own with
// it) as duplicates, so that they reach the child under their numbers;
// nil for the others. done closes the duplicates.
func passThrough(n int) ([]*os.File, func()) {
	files := make([]*os.File, 0, n-3)
	for fd := 3; fd < n; fd++ {
		var f *os.File
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			if dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
				f = os.NewFile(uintptr(dup), fmt.Sprintf("inherited fd %d", fd))
			}
		}
		files = append(files, f)
	}
	return files, func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}
}

// memFile returns an anonymous in-memory file holding text. A child that
// opens /dev/fd/N for it reads it from the start, every time.
func memFile(name, text string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// hookEnv is the process environment plus the wg-quick script variables
// that hooks read: INTERFACE, CONFIG_FILE, and LC_ALL=C, which wg-quick
// exports.
func (r *Runner) hookEnv(iface string) []string {
	env := os.Environ()
	return append(env, "INTERFACE="+iface, "CONFIG_FILE="+r.ConfigFile, "LC_ALL=C")
}

// ScriptVars are the rest of wg-quick's script variables. wg-quick evals a
// hook in a subshell of its own script, so a hook can read what the script
// parsed from the file: ${ADDRESSES[@]}, $MTU, ${DNS[@]}, ${DNS_SEARCH[@]},
// $TABLE, the hook arrays, $SAVE_CONFIG, $WG_CONFIG (the file without
// wg-quick's own keys) and $PROGRAM. They are set as shell variables (not
// exported, as in wg-quick) in front of each hook.
type ScriptVars struct {
	Settings   Settings // the file's [Interface] values
	WGConfig   string
	SaveConfig bool
	Program    string
}

// prelude renders v as bash assignments.
func (v *ScriptVars) prelude(iface, configFile string) string {
	s := &v.Settings
	var b strings.Builder
	scalar := func(name, val string) {
		b.WriteString(name + "=" + bashQuote(val) + "; ")
	}
	array := func(name string, vals []string) {
		b.WriteString(name + "=(")
		for i, val := range vals {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(bashQuote(val))
		}
		b.WriteString("); ")
	}
	scalar("INTERFACE", iface)
	scalar("CONFIG_FILE", configFile)
	scalar("WG_CONFIG", v.WGConfig)
	array("ADDRESSES", stringsOf(s.Addresses))
	mtu := ""
	if s.MTU != 0 {
		mtu = strconv.Itoa(s.MTU)
	}
	scalar("MTU", mtu)
	array("DNS", stringsOf(s.DNS))
	array("DNS_SEARCH", s.DNSSearch)
	scalar("TABLE", s.Table)
	array("PRE_UP", s.PreUp)
	array("POST_UP", s.PostUp)
	array("PRE_DOWN", s.PreDown)
	array("POST_DOWN", s.PostDown)
	save := "0"
	if v.SaveConfig {
		save = "1"
	}
	scalar("SAVE_CONFIG", save)
	scalar("PROGRAM", v.Program)
	return b.String()
}

func stringsOf[T fmt.Stringer](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// bashQuote quotes s as a bash $'...' string, which keeps newlines and
// every other byte on one line. NUL, which no bash string can hold, is
// dropped.
func bashQuote(s string) string {
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0:
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func quote(s string) string { return "`" + s + "'" }

// writeProcSys sets a sysctl by writing its /proc/sys file, which is what
// "sysctl -q name=value" does. A sysctl that already has the value is not
// written: in a container /proc/sys is read-only, and the operator sets
// what is needed beforehand (docker run --sysctl ...).
func writeProcSys(name, value string) error {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	return os.WriteFile(path, []byte(value+"\n"), 0o644)
}
