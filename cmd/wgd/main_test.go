package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgdvpn/wgd/tun/netcfg"
)

// wgdBin is the wgd binary built once for every test of this package that
// runs it as a subprocess.
var wgdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wgd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wgdBin = filepath.Join(dir, "wgd")
	build := exec.Command("go", "build", "-o", wgdBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wgd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a finished subprocess left behind.
type result struct {
	stdout, stderr string
	code           int
}

// runTool runs a program with stdin and returns its output and exit code.
func runTool(t *testing.T, stdin string, prog string, args ...string) result {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(t, cmd)
}

// runCmd runs a prepared command and returns its output and exit code.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return result{out.String(), errb.String(), code}
}

func TestNoArgsPrintsUsage(t *testing.T) {
	r := runTool(t, "", wgdBin)
	if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "genkey") {
		t.Fatalf("%+v", r)
	}
}

func TestVersion(t *testing.T) {
	a := runTool(t, "", wgdBin, "version")
	b := runTool(t, "", wgdBin, "--version")
	if a.code != 0 || b.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "wgd dev (go") {
		t.Fatalf("version %+v, --version %+v", a, b)
	}
}

func TestUnknownFlagFails(t *testing.T) {
	r := runTool(t, "", wgdBin, "genkey", "--bogus")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "wgd: unknown flag: --bogus") {
		t.Fatalf("%+v", r)
	}
}

// TestMistypedSubcommandFails: a first word that is no subcommand is an
// interface name only in wireguard-go's one-argument form; with more
// arguments it is a mistyped subcommand, refused before any daemon starts.
func TestMistypedSubcommandFails(t *testing.T) {
	r := runTool(t, "", wgdBin, "sav", "wg0")
	if r.code != 1 || !strings.Contains(r.stderr, `wgd: unknown command "sav" for "wgd" (did you mean "save"?)`) {
		t.Fatalf("%+v", r)
	}
}

func TestOffloadsOff(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "no": false, "1": true, "yes": true, "true": true} {
		if got := offloadsOff(func(k string) string {
			if k != envNoOffload {
				t.Fatalf("read %s", k)
			}
			return v
		}); got != want {
			t.Errorf("WGD_NO_OFFLOAD=%q: off = %v, want %v", v, got, want)
		}
	}
}

// TestExitCodeMissingDNSTool: with DNS set and neither resolvconf nor
// resolvectl installed, wg-quick's shell fails with "command not found",
// 127; up exits with the same.
func TestExitCodeMissingDNSTool(t *testing.T) {
	if got := exitCode(fmt.Errorf("set DNS for wg0: %w", netcfg.ErrNoDNSManager)); got != 127 {
		t.Fatalf("exit code %d, want 127", got)
	}
	if got := exitCode(errors.New("other")); got != 1 {
		t.Fatalf("exit code %d, want 1", got)
	}
}

// TestNearCommand: the typo notice of `wgd WORD` fires for one slip from a
// subcommand of four letters or more, and not for ordinary short
// interface names that are one slip from "up" or "set" (tun, vpn, gw ...).
func TestNearCommand(t *testing.T) {
	root := newRootCmd()
	for word, want := range map[string]string{
		"shwo": "show", "verison": "version", "genkye": "genkey", "sav": "", "svae": "save", "dwn": "",
		"showconff": "showconf", "strp": "strip", "reloda": "reload",
		"tun": "", "tap": "", "vpn": "", "gw": "", "ups": "", "sets": "", "site": "", "sync": "", "gen": "", "pub": "",
		"wg0": "", "office": "", "show": "", "wgnet": "",
	} {
		if got := nearCommand(root, word); got != want {
			t.Errorf("nearCommand(%q) = %q, want %q", word, got, want)
		}
	}
}
