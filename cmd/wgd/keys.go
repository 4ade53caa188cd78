package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/wgdvpn/wgd/noise"
)

// The errors of `wgd pubkey`, worded and capitalized exactly as wg prints
// them, so that scripts matching wg's messages keep working.
var (
	//lint:ignore ST1005 wg's exact wording
	errKeyFormat = errors.New("Key is not the correct length or format")
	//lint:ignore ST1005 wg's exact wording
	errTrailingChars = errors.New("Trailing characters found after key")
)

// maxTrailing bounds how much blank input pubkey reads after the key. wg
// reads to EOF; a bound keeps `wgd pubkey </dev/zero` from spinning forever.
const maxTrailing = 1 << 20

func newGenkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "genkey",
		Short: "Generate a new private key and print it in base64",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warnWorldReadable(cmd)
			k, err := noise.NewPrivateKey(nil) // clamped, as wg genkey's are
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k.String())
			return err
		},
	}
}

func newGenpskCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "genpsk",
		Short: "Generate a new preshared key and print it in base64",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warnWorldReadable(cmd)
			k, err := noise.NewPresharedKey(nil)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k.String())
			return err
		},
	}
}

func newPubkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pubkey",
		Short: "Read a private key on stdin and print its public key in base64",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := readPublicKey(cmd.InOrStdin())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), pub.String())
			return err
		},
	}
}

// readPublicKey reads a base64 private key the way `wg pubkey` does:
// exactly 44 characters first, then nothing but blanks or NUL bytes, and
// derives its public key.
func readPublicKey(r io.Reader) (noise.PublicKey, error) {
	br := bufio.NewReader(r)
	var b64 [44]byte
	if _, err := io.ReadFull(br, b64[:]); err != nil {
		return noise.PublicKey{}, errKeyFormat
	}
	if err := checkTrailing(br); err != nil {
		return noise.PublicKey{}, err
	}
	k, err := noise.ParsePrivateKey(string(b64[:]))
	if err != nil {
		return noise.PublicKey{}, errKeyFormat
	}
	// wg clamps before it multiplies, so even the all-zero key has a public
	// key; noise.PublicKey maps the zero key to "none", and clamping first
	// makes the key non-zero without changing any other result.
	k.Clamp()
	return k.PublicKey(), nil
}

// checkTrailing accepts only blanks and NUL bytes up to EOF.
func checkTrailing(br *bufio.Reader) error {
	for n := 0; n < maxTrailing; n++ {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch c {
		case 0, ' ', '\t', '\n', '\v', '\f', '\r':
		default:
			return errTrailingChars
		}
	}
	return errTrailingChars
}

// warnWorldReadable prints wg genkey's warning when stdout is a regular
// file that others may access: the key would be readable by them.
func warnWorldReadable(cmd *cobra.Command) {
	f, ok := cmd.OutOrStdout().(*os.File)
	if !ok {
		return
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o007 == 0 {
		return
	}
	fmt.Fprint(cmd.ErrOrStderr(),
		"Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n")
}
