package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at link time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionLine is what `wgd version` and `wgd --version` print: the wgd
// version and the Go toolchain and platform it was built with, which is
// what a bug report needs.
func versionLine() string {
	return fmt.Sprintf("wgd %s (%s %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of wgd and of the Go toolchain that built it",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}
