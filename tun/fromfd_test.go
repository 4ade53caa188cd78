package tun

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFromFdRefusesNonTUN: an fd that is not an attached TUN (here a pipe)
// is refused with a clear error and closed, as FromFd promises.
func TestFromFdRefusesNonTUN(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	_, err := FromFd(p[0], 1420, Options{})
	if err == nil || !strings.Contains(err.Error(), "is not an attached TUN") {
		t.Fatalf("FromFd(pipe) = %v", err)
	}
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); err == nil {
		t.Fatal("fd left open after the refusal")
	}
}
