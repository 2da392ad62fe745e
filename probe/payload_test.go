package probe

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{0, TokenLen, 56, 1400} {
		want := Payload{RunID: 0xdeadbeefcafef00d, Seq: 4242, SentAt: time.Unix(1700000000, 123456789)}
		b := want.Marshal(size)
		if wantLen := max(size, TokenLen); len(b) != wantLen {
			t.Errorf("Marshal(%d): got %d bytes, want %d", size, len(b), wantLen)
		}
		got, err := ParsePayload(b)
		if err != nil {
			t.Fatalf("ParsePayload(Marshal(%d)): %v", size, err)
		}
		if got.RunID != want.RunID || got.Seq != want.Seq || !got.SentAt.Equal(want.SentAt) {
			t.Errorf("size %d: got %+v, want %+v", size, got, want)
		}
	}
}

func TestParsePayloadRejectsForeignData(t *testing.T) {
	ping := bytes.Repeat([]byte{0x10, 0x11, 0x12, 0x13}, 14) // what iputils ping sends after its timestamp
	good := Payload{RunID: 1, Seq: 2}.Marshal(56)
	short := good[:TokenLen-1]
	for name, b := range map[string][]byte{"empty": nil, "iputils ping": ping, "truncated token": short} {
		if _, err := ParsePayload(b); !errors.Is(err, ErrNotProbe) {
			t.Errorf("%s: got error %v, want ErrNotProbe", name, err)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add(Payload{RunID: 7, Seq: 9, SentAt: time.Unix(1, 2)}.Marshal(56))
	f.Add([]byte("cnt1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePayload(b)
		if err != nil {
			return
		}
		// Whatever parses must survive a round trip through Marshal.
		again, err := ParsePayload(p.Marshal(len(b)))
		if err != nil || again.Token() != p.Token() || !again.SentAt.Equal(p.SentAt) {
			t.Fatalf("round trip of %x: got %+v, %v; want %+v", b, again, err, p)
		}
	})
}
