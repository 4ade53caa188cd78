package main

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wgdvpn/wgd/conf"
)

// configDir is where wg-quick looks up a configuration by interface name.
const configDir = "/etc/wireguard"

// ifaceName is wg-quick's test for "this argument is an interface name,
// not a path".
var ifaceName = regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}$`)

// configPath maps the FILE|IFACE argument of strip (and later up and down)
// to a path: an interface name becomes dir/NAME.conf, anything else is a
// path. Unlike wg-quick, "wg0.conf" alone is taken as a path, not as the
// interface "wg0.conf".
func configPath(arg, dir string) string {
	if ifaceName.MatchString(arg) && !strings.HasSuffix(arg, ".conf") {
		return filepath.Join(dir, arg+".conf")
	}
	return arg
}

func newStripCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "strip FILE|IFACE",
		Short: "Print a wg-quick configuration without the keys that only wg-quick reads",
		Long: "strip prints the configuration in the form `wg setconf` accepts, as `wg-quick strip`\n" +
			"does: without Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown and SaveConfig.\n" +
			"IFACE stands for " + configDir + "/IFACE.conf.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The same rule as up and down (wg-quick's parse_options):
			// an interface name, or a path to NAME.conf.
			target, err := resolveTarget(args[0])
			if err != nil {
				return err
			}
			c, _, err := loadConfig(target, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(conf.Strip(c).Marshal())
			return err
		},
	}
}
