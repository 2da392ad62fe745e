package probe

import (
	"errors"
	"testing"
	"time"
)

// TestExportedTokenParsers: what report calls on captured TCP and UDP
// probes reads the token every codec writes.
func TestExportedTokenParsers(t *testing.T) {
	want := Token{RunID: 0x1122334455667788, Seq: 70000}
	syn, _ := testTCPCodec(tcpTarget4).request(want.Seq, time.Time{})
	if got, err := ParseTCPToken(syn); err != nil || got != want {
		t.Errorf("ParseTCPToken: %+v, %v; want %+v", got, err, want)
	}
	if low, ok := TCPAnswerSeq(tcpISN(want.Seq) + 1); !ok || low != want.Seq&lowMask {
		t.Errorf("TCPAnswerSeq: %d, %v", low, ok)
	}
	want.RunID = 0x0123456789abcdef
	q, _ := newUDPCodec(udpConfig(53), 40000).request(want.Seq, time.Time{})
	for name, b := range map[string][]byte{"query": q, "response": dnsResponse(q, 3, false)} {
		if got, err := ParseDNSToken(b); err != nil || got != want {
			t.Errorf("ParseDNSToken(%s): %+v, %v; want %+v", name, got, err, want)
		}
	}
	u, _ := newUDPCodec(udpConfig(7), 40000).request(want.Seq, time.Time{})
	if got, err := ParseToken(u[:16]); err != nil || got != want {
		t.Errorf("ParseToken: %+v, %v; want %+v", got, err, want)
	}
	for name, err := range map[string]error{
		"tcp": func() error { _, err := ParseTCPToken(syn[:30]); return err }(),
		"dns": func() error { _, err := ParseDNSToken(q[:20]); return err }(),
		"udp": func() error { _, err := ParseToken(u[:15]); return err }(),
	} {
		if !errors.Is(err, ErrNotProbe) {
			t.Errorf("%s, short: %v, want ErrNotProbe", name, err)
		}
	}
	if TCPTokenOffset != 22 || DNSTokenOffset != 13 {
		t.Errorf("offsets %d, %d; want 22 and 13 (docs/probe.md)", TCPTokenOffset, DNSTokenOffset)
	}
}

// FuzzParseTCPToken: no header panics the exported parsers.
func FuzzParseTCPToken(f *testing.F) {
	syn, _ := testTCPCodec(tcpTarget4).request(1, time.Time{})
	f.Add(syn)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseTCPToken(b)
		ParseDNSToken(b)
		ParseToken(b)
	})
}
