package noise

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// cacophonyVector is the shape of /work/shared/vectors/noise-ikpsk2-cacophony.json.
type cacophonyVector struct {
	Prologue      hexBytes   `json:"init_prologue"`
	PSKs          []hexBytes `json:"init_psks"`
	InitStatic    hexBytes   `json:"init_static"`
	InitEphemeral hexBytes   `json:"init_ephemeral"`
	RespStatic    hexBytes   `json:"resp_static"`
	RespEphemeral hexBytes   `json:"resp_ephemeral"`
	HandshakeHash hexBytes   `json:"handshake_hash"`
	Messages      []struct {
		Payload    hexBytes `json:"payload"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"messages"`
}

type hexBytes []byte

func (b *hexBytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*b = v
	return err
}

// loadCacophony reads testdata's copy of shared/vectors/noise-ikpsk2-cacophony.json,
// so the test runs where the shared directory is not mounted.
func loadCacophony(t *testing.T) cacophonyVector {
	t.Helper()
	data, err := os.ReadFile("testdata/noise-ikpsk2-cacophony.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Vectors []cacophonyVector }
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != 1 || len(file.Vectors[0].Messages) < 4 {
		t.Fatal("unexpected vector file shape")
	}
	return file.Vectors[0]
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCacophonyIKpsk2 replays the cacophony Noise_IKpsk2 vector through the
// same code paths the WireGuard messages use, with the vector's prologue and
// payloads in place of the identifier and the timestamp.
func TestCacophonyIKpsk2(t *testing.T) {
	v := loadCacophony(t)
	initStatic := NewStatic(PrivateKey(v.InitStatic))
	respStatic := NewStatic(PrivateKey(v.RespStatic))
	psk := PresharedKey(v.PSKs[0])

	// Message 0, initiator: e, es, s, ss, payload.
	hi := NewHandshake(initStatic, respStatic.Public(), psk)
	hi.prologue = v.Prologue
	hi.begin(hi.remote)
	m0, err := hi.writeInitiation(nil, bytes.NewReader(v.InitEphemeral), v.Messages[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m0, v.Messages[0].Ciphertext) {
		t.Fatalf("message 0:\n got %x\nwant %x", m0, v.Messages[0].Ciphertext)
	}

	// Message 0, responder: the two phases the device runs.
	r, err := respStatic.openInitiation(m0, len(v.Messages[0].Payload), v.Prologue)
	if err != nil {
		t.Fatal(err)
	}
	if r.Remote() != initStatic.Public() {
		t.Fatal("responder decrypted the wrong initiator static key")
	}
	hr := NewHandshake(respStatic, initStatic.Public(), psk)
	payload, c, h, err := hr.finishInitiation(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, v.Messages[0].Payload) {
		t.Fatalf("payload 0: got %x", payload)
	}
	hr.chain, hr.hash, hr.remoteEphemeral = c, h, r.remoteEphemeral

	// Message 1, responder: e, ee, se, psk, payload.
	m1, err := hr.writeResponse(nil, bytes.NewReader(v.RespEphemeral), v.Messages[1].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m1, v.Messages[1].Ciphertext) {
		t.Fatalf("message 1:\n got %x\nwant %x", m1, v.Messages[1].Ciphertext)
	}
	if !bytes.Equal(hr.hash[:], v.HandshakeHash) {
		t.Fatalf("responder handshake hash %x", hr.hash)
	}

	// Message 1, initiator.
	c, h, err = hi.readResponse(m1, len(v.Messages[1].Payload))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h[:], v.HandshakeHash) {
		t.Fatalf("initiator handshake hash %x, want %x", h, v.HandshakeHash)
	}
	hi.chain, hi.hash = c, h
	hi.state, hr.state = stateResponseConsumed, stateResponseCreated
	kpi, err := hi.DeriveKeypair(testNow)
	if err != nil {
		t.Fatal(err)
	}
	kpr, err := hr.DeriveKeypair(testNow)
	if err != nil {
		t.Fatal(err)
	}

	// Transport messages: initiator to responder, then back, nonces 0, 0, 1, 1.
	for i, m := range v.Messages[2:] {
		from, to := kpi, kpr
		if i%2 == 1 {
			from, to = kpr, kpi
		}
		var nonce [12]byte
		nonce[4] = byte(i / 2)
		ct := from.send.Seal(nil, nonce[:], m.Payload, nil)
		if !bytes.Equal(ct, m.Ciphertext) {
			t.Fatalf("message %d:\n got %x\nwant %x", i+2, ct, m.Ciphertext)
		}
		pt, err := to.recv.Open(nil, nonce[:], ct, nil)
		if err != nil || !bytes.Equal(pt, m.Payload) {
			t.Fatalf("message %d does not open: %v", i+2, err)
		}
	}
}

// TestInitialChainAndHash checks C0 and H0 from the vectors README.
func TestInitialChainAndHash(t *testing.T) {
	c0 := initialChainKey()
	h0 := initialHash(c0, []byte(identifier))
	if got, want := hex.EncodeToString(c0[:]), "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36"; got != want {
		t.Errorf("C0 = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(h0[:]), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3"; got != want {
		t.Errorf("H0 = %s, want %s", got, want)
	}
}
