package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func runDaemon(cmd *cobra.Command, args []string, foreground bool) error {
	return errors.New("daemon mode is not built yet")
}
