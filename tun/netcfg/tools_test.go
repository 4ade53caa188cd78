package netcfg

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
