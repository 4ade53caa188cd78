// Command wgd is a userspace WireGuard daemon and its tools in one binary:
// the work of wireguard-go (`wgd [-f] IFACE`), of wg (keys, show, set, ...)
// and of wg-quick (up, down, strip).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
	"github.com/wgdvpn/wgd/tun/netcfg"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// execute runs one command line and returns the process exit code. Errors
// are printed here, once, as "wgd: ...", the way wg prefixes its program
// name; cobra's own printing is silenced.
func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "wgd: %v\n", err)
		return exitCode(err)
	}
	return 0
}

// exitCode is 1, or, when a hook or tool that up or down ran failed, that
// program's exit status, as wg-quick (set -e) exits with it; 78 for a
// configuration `up --foreground` cannot use (errConfig).
func exitCode(err error) int {
	if errors.As(err, new(errConfig)) {
		return exitConfig
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	if errors.Is(err, netcfg.ErrNoDNSManager) {
		return 127 // wg-quick's shell on a missing resolvconf: command not found
	}
	return 1
}

// newRootCmd builds the command tree. The root itself also runs the daemon
// in wireguard-go's form, `wgd [-f|--foreground] INTERFACE-NAME`, so that
// wg-quick can use wgd as WG_QUICK_USERSPACE_IMPLEMENTATION: any first word
// that is not a subcommand reaches RunE as an interface name.
func newRootCmd() *cobra.Command {
	var foreground bool
	root := &cobra.Command{
		Use:           "wgd [-f] INTERFACE-NAME",
		Short:         "A userspace WireGuard daemon with the wg and wg-quick tools built in",
		Args:          cobra.ArbitraryArgs,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return cmd.Help()
			case len(args) > 1:
				// Not wireguard-go's form: a mistyped subcommand.
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += fmt.Sprintf(" (did you mean %q?)", s[0])
				}
				return fmt.Errorf("%s; run 'wgd --help' for the commands", msg)
			}
			if near := nearCommand(cmd, args[0]); near != "" {
				// wireguard-go's form takes any name, so a mistyped
				// `wgd shwo` starts a daemon: say so, rather than
				// leave a new link and process unseen.
				fmt.Fprintf(cmd.ErrOrStderr(), "wgd: %q is not a command (did you mean %q?): starting a daemon for an interface named %q; `ip link del %s` stops it\n",
					args[0], near, args[0], args[0])
			}
			return runDaemon(cmd, args, foreground)
		},
	}
	root.Flags().BoolVarP(&foreground, "foreground", "f", false,
		"stay in the foreground instead of daemonizing (wireguard-go's -f)")
	root.SetVersionTemplate(versionLine() + "\n")
	root.SuggestionsMinimumDistance = 2
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newGenkeyCmd(), newPubkeyCmd(), newGenpskCmd(), newStripCmd(), newVersionCmd())
	root.AddCommand(newUpCmd(), newDownCmd(), newReloadCmd(), newSaveCmd())
	addWgCommands(root) // show, showconf, set, setconf, addconf, syncconf
	return root
}

// nearCommand returns the subcommand that word is one slip away from (one
// letter changed, added or dropped, or two neighbours swapped), or "". Only
// words and commands of four letters or more count: short names such as
// tun, vpn or gw are ordinary interface names, one slip from "up" or "set".
func nearCommand(root *cobra.Command, word string) string {
	if len(word) < 4 {
		return ""
	}
	for _, c := range root.Commands() {
		if name := c.Name(); len(name) >= 4 && c.IsAvailableCommand() && oneSlip(word, name) {
			return name
		}
	}
	return ""
}

// oneSlip reports whether a and b differ by one substitution, insertion,
// deletion or swap of adjacent letters.
func oneSlip(a, b string) bool {
	if a == b {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	switch {
	case len(b)-len(a) > 1:
		return false
	case len(a) < len(b): // one letter more in b
		return a[i:] == b[i+1:]
	case i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]: // swap
		return true
	default: // one letter changed
		return a[i+1:] == b[i+1:]
	}
}

// usageArgs rejects any positional argument, the way wg's key commands do,
// with the command's usage line as the message.
func usageArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("usage: %s", cmd.CommandPath())
	}
	return nil
}
