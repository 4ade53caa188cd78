package ipc

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestInterfacesInDirectoryOrder: the listing keeps the directory's own
// order, as wg's readdir loop does (wg show interfaces, wg show all), and
// leaves out what wg leaves out: files that are not sockets, names without
// .sock, and sockets nobody listens on.
func TestInterfacesInDirectoryOrder(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for _, name := range []string{"wgz", "wga", "wgm", "wg0", "wgq", "wgb", "wgy", "wgc"} {
		l, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		want = append(want, name)
	}
	stale, err := net.Listen("unix", filepath.Join(dir, "stale.sock"))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if err := os.WriteFile(filepath.Join(dir, "file.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	order, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var inDirOrder []string
	for _, n := range order {
		if name, ok := strings.CutSuffix(n, ".sock"); ok && slices.Contains(want, name) {
			inDirOrder = append(inDirOrder, name)
		}
	}
	got, err := InterfacesIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, inDirOrder) {
		t.Fatalf("InterfacesIn = %v, want directory order %v", got, inDirOrder)
	}
	if missing, err := InterfacesIn(filepath.Join(dir, "none")); err != nil || missing != nil {
		t.Fatalf("missing directory: %v %v", missing, err)
	}
}

// TestInterfacesInFollowsLinks: a socket reached through a symlink (or
// bind-mounted over a file, as a container is given one socket, whose
// readdir entry then says "regular file") is listed, as wg lists it: wg
// stats the path. A symlink to something that is not a socket is not.
func TestInterfacesInFollowsLinks(t *testing.T) {
	real, dir := t.TempDir(), t.TempDir()
	l, err := net.Listen("unix", filepath.Join(real, "wgl.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Symlink(filepath.Join(real, "wgl.sock"), filepath.Join(dir, "wgl.sock")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "plain"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(real, "plain"), filepath.Join(dir, "wgp.sock")); err != nil {
		t.Fatal(err)
	}
	got, err := InterfacesIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"wgl"}) {
		t.Fatalf("InterfacesIn = %v, want [wgl]", got)
	}
}
