package netcfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeTool writes a script that logs its argv and stdin to log.
func fakeTool(t *testing.T, dir, name, log string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	script := "#!/bin/sh\necho \"" + name + " $*\" >> " + log + "\ncat >> " + log + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDNSThroughResolvectl(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	var printed []string
	r := &Runner{
		Resolvectl: []string{fakeTool(t, dir, "resolvectl", log)},
		LookPath:   func(string) (string, error) { return "", exec.ErrNotFound },
		Print:      func(f string, a ...any) { printed = append(printed, f) },
	}
	s := Settings{Interface: "wg0", DNS: []netip.Addr{netip.MustParseAddr("198.18.0.53")}}
	u := &Undo{r: r}
	if err := r.setDNS(context.Background(), u, s); err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(log)
	want := "resolvectl dns wg0 198.18.0.53\nresolvectl domain wg0 ~.\nresolvectl revert wg0\n"
	if string(got) != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

func TestDNSWithoutManager(t *testing.T) {
	r := &Runner{LookPath: func(string) (string, error) { return "", exec.ErrNotFound }}
	s := Settings{Interface: "wg0", DNS: []netip.Addr{netip.MustParseAddr("198.18.0.53")}}
	err := r.setDNS(context.Background(), &Undo{r: r}, s)
	if !errors.Is(err, ErrNoDNSManager) {
		t.Fatalf("err = %v", err)
	}
	// Search domains alone set nothing, as in wg-quick.
	s.DNS = nil
	s.DNSSearch = []string{"example"}
	if err := r.setDNS(context.Background(), &Undo{r: r}, s); err != nil {
		t.Fatal(err)
	}
}

func TestHooks(t *testing.T) {
	var out bytes.Buffer
	var printed []string
	r := &Runner{Stdout: &out, Stderr: &out, Print: func(f string, a ...any) {
		printed = append(printed, strings.TrimPrefix(f, "[#] %s")+a[0].(string))
	}}
	err := r.runHooks(context.Background(), "PostUp", "wg0", []string{"echo hello %i", "false", "echo never"})
	if !errors.Is(err, ErrHook) || !strings.Contains(err.Error(), "PostUp hook `false'") {
		t.Fatalf("err = %v", err)
	}
	if out.String() != "hello wg0\n" || strings.Join(printed, "|") != "echo hello wg0|false" {
		t.Fatalf("out %q printed %q", out.String(), printed)
	}
}

// TestHookInterrupted: a hook killed because the run was interrupted
// (Ctrl-C, SIGTERM) says so; it read "hook failed: signal: killed", as if
// the hook had crashed. A hook that fails on its own does not say it.
func TestHookInterrupted(t *testing.T) {
	var out bytes.Buffer
	r := &Runner{Stdout: &out, Stderr: &out, Print: func(string, ...any) {}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := r.runHooks(ctx, "PostUp", "wg0", []string{"sleep 10"})
	if !errors.Is(err, ErrHook) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the hook ran on for %v after the interruption", time.Since(start))
	}
	if err := r.runHooks(context.Background(), "PostUp", "wg0", []string{"exit 3"}); strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("a failing hook said it was interrupted: %v", err)
	}
}

// TestHooksRunAsWgQuick checks the shell wg-quick gives a hook: errexit
// and pipefail (a failing command inside one hook fails it), and the
// INTERFACE, CONFIG_FILE and LC_ALL variables.
func TestHooksRunAsWgQuick(t *testing.T) {
	var out bytes.Buffer
	r := &Runner{Stdout: &out, Stderr: &out, ConfigFile: "/etc/wireguard/wg0.conf"}
	err := r.runHooks(context.Background(), "PostUp", "wg0", []string{`echo "[$INTERFACE] [$CONFIG_FILE] [$LC_ALL]"`})
	if err != nil || out.String() != "[wg0] [/etc/wireguard/wg0.conf] [C]\n" {
		t.Fatalf("err %v, out %q", err, out.String())
	}
	for _, h := range []string{"false; echo after", "false | cat; echo after"} {
		out.Reset()
		err := r.runHooks(context.Background(), "PostUp", "wg0", []string{h})
		if !errors.Is(err, ErrHook) || strings.Contains(out.String(), "after") {
			t.Fatalf("%q: err %v, out %q", h, err, out.String())
		}
	}
}

// TestHookScriptVars: a hook reads wg-quick's script variables (arrays
// too), whatever bytes the values hold, and bash's line numbers in a
// hook's errors stay as without them.
func TestHookScriptVars(t *testing.T) {
	var out bytes.Buffer
	tricky := "a'b\\c\"d $(touch /nonexistent) `x`\nnext\r\x01\x7f\x00é"
	r := &Runner{Stdout: &out, Stderr: &out, ConfigFile: "/etc/wireguard/wg0.conf", Vars: &ScriptVars{
		Settings: Settings{
			Addresses: prefixes("198.18.0.1/24", "fd00::1/64"),
			MTU:       1380,
			Table:     "1234",
			DNS:       []netip.Addr{netip.MustParseAddr("198.18.0.53")},
			DNSSearch: []string{"example.test", "~."},
			PostUp:    []string{"first", tricky},
		},
		WGConfig:   "[Interface]\nPrivateKey = x\n",
		SaveConfig: true,
		Program:    "wgd",
	}}
	hook := `printf '[%s]' "${ADDRESSES[@]}" "$MTU" "${DNS[@]}" "${DNS_SEARCH[@]}" "$TABLE" "${#POST_UP[@]}" "${POST_UP[1]}" "${#PRE_UP[@]}" "$SAVE_CONFIG" "$PROGRAM" "$INTERFACE" "$CONFIG_FILE" "$WG_CONFIG"`
	if err := r.runHooks(context.Background(), "PostUp", "wg0", []string{hook}); err != nil {
		t.Fatalf("err %v, out %q", err, out.String())
	}
	want := "[198.18.0.1/24][fd00::1/64][1380][198.18.0.53][example.test][~.][1234][2][" +
		strings.ReplaceAll(tricky, "\x00", "") + "][0][1][wgd][wg0][/etc/wireguard/wg0.conf][[Interface]\nPrivateKey = x\n]"
	if out.String() != want {
		t.Fatalf("hook printed\n%q\nwant\n%q", out.String(), want)
	}
	// The keys in WG_CONFIG are in no argument (ps shows those to every
	// user) and in no environment; the fd they came on is closed.
	out.Reset()
	leak := `k=Private; k+=Key; grep -q $k /proc/$$/cmdline && echo argv; env | grep -q $k && echo env; [ -e /proc/$$/fd/9 ] && echo fd9; echo checked`
	if err := r.runHooks(context.Background(), "PostUp", "wg0", []string{leak}); err != nil || out.String() != "checked\n" {
		t.Fatalf("err %v, out %q", err, out.String())
	}
	// Large values (a file of many peers) fit: no argument or
	// environment string limit applies.
	r.Vars.WGConfig = strings.Repeat("[Peer]\nPublicKey = x\n", 20000)
	out.Reset()
	if err := r.runHooks(context.Background(), "PostUp", "wg0", []string{`echo ${#WG_CONFIG}`}); err != nil || out.String() != fmt.Sprintf("%d\n", len(r.Vars.WGConfig)) {
		t.Fatalf("large WG_CONFIG: err %v, out %q", err, out.String())
	}
	out.Reset()
	err := r.runHooks(context.Background(), "PostUp", "wg0", []string{`echo "a`})
	if err == nil || !strings.Contains(out.String(), "line 1:") {
		t.Fatalf("err %v, out %q: want bash's error on line 1", err, out.String())
	}
}

// TestDownStopsWhenSaveFails: SaveConfig that cannot write the file stops
// down before anything is taken away, as wg-quick does, so that the
// runtime changes it was to keep are still there; a device that goes
// anyway (its daemon is stopping) is taken down.
func TestDownStopsWhenSaveFails(t *testing.T) {
	deleted := false
	dev := Device{
		Save:   func() error { return errors.New("read-only file system") },
		Delete: func() error { deleted = true; return nil },
	}
	// No tools: the going case must not list the host's firewall.
	r := &Runner{LookPath: func(string) (string, error) { return "", exec.ErrNotFound }}
	err := r.Down(context.Background(), Settings{Interface: "wgdnosuch0"}, dev)
	if err == nil || !strings.Contains(err.Error(), "save config") || deleted {
		t.Fatalf("err %v, deleted %v: want the save error and the link kept", err, deleted)
	}
	dev.Going = true
	if err := r.Down(context.Background(), Settings{Interface: "wgdnosuch0"}, dev); err == nil || !deleted {
		t.Fatalf("going: err %v, deleted %v: want the error and the link deleted", err, deleted)
	}
}

// TestHooksGetCallersFds: descriptors the caller handed wgd (wgd up wg0
// 3>log) reach the hooks under their numbers, and so does its stdin, as
// in wg-quick, whose hooks run in its own shell. The script variables'
// descriptor took fd 3 once, and such a hook failed with "Bad file
// descriptor".
func TestHooksGetCallersFds(t *testing.T) {
	free := -1
	for fd := 3; fd < varsFd; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); errors.Is(err, unix.EBADF) {
			free = fd
			break
		}
	}
	if free < 0 {
		t.Skip("no free descriptor below 9 in this test process")
	}
	path := filepath.Join(t.TempDir(), "log")
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT, 0o600) // inherited: no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	if fd != free { // open took the lowest free number, maybe this one
		if err := unix.Dup2(fd, free); err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	defer unix.Close(free)
	var out bytes.Buffer
	r := &Runner{Stdout: &out, Stderr: &out, Vars: &ScriptVars{}}
	hook := fmt.Sprintf("echo to the caller >&%d", free)
	if err := r.runHooks(context.Background(), "PostUp", "wg0", []string{hook}); err != nil {
		t.Fatalf("err %v, out %q", err, out.String())
	}
	if data, _ := os.ReadFile(path); string(data) != "to the caller\n" {
		t.Fatalf("fd %d got %q", free, data)
	}
}
