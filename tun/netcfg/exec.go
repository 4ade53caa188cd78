package netcfg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// command is an external program to run: its argv and what to feed it.
type command struct {
	argv  []string
	stdin string
	env   []string // nil: the process's own
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
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
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
	env := r.hookEnv(iface)
	for _, h := range hooks {
		h = expandHook(h, iface)
		r.printf("[#] %s", h)
		argv := append(append([]string(nil), shell...), h)
		if err := r.run(ctx, command{argv: argv, env: env}); err != nil {
			return stepErr(phase+" hook "+quote(h), fmt.Errorf("%w: %w", ErrHook, err))
		}
	}
	return nil
}

// hookEnv is the process environment plus the wg-quick script variables
// that hooks read: INTERFACE, CONFIG_FILE, and LC_ALL=C, which wg-quick
// exports.
func (r *Runner) hookEnv(iface string) []string {
	env := os.Environ()
	return append(env, "INTERFACE="+iface, "CONFIG_FILE="+r.ConfigFile, "LC_ALL=C")
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
