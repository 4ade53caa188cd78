package ipc

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgdvpn/wgd/device"
)

// countingDevice is the fake device plus drop counters.
type countingDevice struct {
	*fakeDevice
	snap device.CountersSnapshot
}

func (d *countingDevice) Counters() device.CountersSnapshot { return d.snap }

func TestCountersExtension(t *testing.T) {
	dir := t.TempDir()
	l, err := ListenConfig{Dir: dir}.Listen("wgdc0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dev := &countingDevice{fakeDevice: newFakeDevice(), snap: device.CountersSnapshot{Replay: 7, InvalidMAC1: 3, HandshakesDone: 2}}
	go l.Serve(context.Background(), dev, slog.New(slog.NewTextHandler(io.Discard, nil)))

	c, err := DialPath(filepath.Join(dir, "wgdc0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got.CountersSnapshot != dev.snap || got.Stats != (Stats{}) {
		t.Fatalf("counters = %+v, want %+v and no refusals", got, dev.snap)
	}
	// The connection stays usable for standard operations afterwards.
	if _, _, err := c.Get(); err != nil {
		t.Fatalf("get after counters: %v", err)
	}
}

func TestCountersUnsupportedDevice(t *testing.T) {
	s := startServer(t, Limits{})
	c, r := s.dial(t)
	defer c.Close()
	reply := roundTrip(t, c, r, "wgd_counters=1\n\n")
	if !strings.HasPrefix(reply, "errno=-22") {
		t.Fatalf("reply %q, want errno=-22 for a device without counters", reply)
	}
}
