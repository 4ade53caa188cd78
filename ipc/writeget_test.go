package ipc

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/wgdvpn/wgd/device"
)

// TestWriteGetChunksEqualWhole checks that a reply spanning many chunks,
// built on one goroutine and written on another, is byte for byte the text
// of appendInfo and appendPeerInfo over the same visit.
func TestWriteGetChunksEqualWhole(t *testing.T) {
	dev := newFakeDevice()
	cfg, err := ParseSet(bufio.NewReader(bytes.NewReader(setconfText(5000))), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	var want []byte
	dev.Visit(func(i device.Info) { want = appendInfo(want, &i) },
		func(p *device.PeerInfo) { want = appendPeerInfo(want, p) })
	if len(want) < 4*replyChunk {
		t.Fatalf("reply of %d bytes does not span the chunks this test needs", len(want))
	}
	var got bytes.Buffer
	if err := WriteGet(&got, dev); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("chunked reply differs: %d bytes, want %d", got.Len(), len(want))
	}
}

var errTestWrite = errors.New("test: write refused")

// failWriter accepts n writes and then fails.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errTestWrite
	}
	w.n--
	return len(p), nil
}

// TestWriteGetWriteError checks that a failed write is reported and that
// WriteGet still waits for the builder, leaving no goroutine behind.
func TestWriteGetWriteError(t *testing.T) {
	dev := newFakeDevice()
	cfg, err := ParseSet(bufio.NewReader(bytes.NewReader(setconfText(3000))), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	for n := range 3 {
		if err := WriteGet(&failWriter{n: n}, dev); !errors.Is(err, errTestWrite) {
			t.Fatalf("after %d writes: err = %v, want %v", n, err, errTestWrite)
		}
	}
}

var errTestVisit = errors.New("test: visit failed")

type failVisit struct{}

func (failVisit) Apply(*device.Config) error { return nil }
func (failVisit) Visit(dev func(device.Info), _ func(*device.PeerInfo)) error {
	dev(device.Info{ListenPort: 1})
	return errTestVisit
}

// TestWriteGetVisitError checks that a Visit error on a small reply is
// returned and nothing is written.
func TestWriteGetVisitError(t *testing.T) {
	var out bytes.Buffer
	if err := WriteGet(&out, failVisit{}); !errors.Is(err, errTestVisit) {
		t.Fatalf("err = %v, want %v", err, errTestVisit)
	}
	if out.Len() != 0 {
		t.Fatalf("wrote %q before the error", out.Bytes())
	}
}
