// Package probe sends ICMP echo probes from a socket created inside a pod's
// network namespace and records when each was sent and answered. Every probe
// carries a Payload token, which is how the same packet is found again at
// every capture point, through NAT and inside tunnels.
package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Magic opens every probe payload: "cnt1" in ASCII. Capture filters match it
// at the start of the ICMP echo data.
const Magic uint32 = 0x636e7431

// TokenLen is the size of the token at the start of every probe payload:
// magic (4) + run id (8) + sequence (4) + send time in ns (8).
const TokenLen = 24

// ErrNotProbe is returned by ParsePayload for data that is not a cnitrace
// token.
var ErrNotProbe = errors.New("not a cnitrace probe payload")

// Payload is the token carried in the ICMP echo data of every probe.
type Payload struct {
	RunID  uint64    // random per run, so concurrent runs never mix
	Seq    uint32    // probe sequence number, from 0
	SentAt time.Time // user-space send time, for information only
}

// Token identifies one probe across all capture points.
type Token struct {
	RunID uint64
	Seq   uint32
}

// Token returns the matching key of p.
func (p Payload) Token() Token { return Token{RunID: p.RunID, Seq: p.Seq} }

// Marshal returns the payload padded to size bytes (at least TokenLen). The
// padding repeats a fixed pattern so captures stay easy to read.
func (p Payload) Marshal(size int) []byte {
	b := newPayload(size)
	p.put(b)
	return b
}

// newPayload returns room for a payload of size bytes (at least
// TokenLen), the padding already in place: a run's requests differ only
// in the token, which put writes into it.
func newPayload(size int) []byte {
	b := make([]byte, max(size, TokenLen))
	for i := TokenLen; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// put writes p's token into the first TokenLen bytes of b.
func (p Payload) put(b []byte) {
	binary.BigEndian.PutUint32(b[0:4], Magic)
	binary.BigEndian.PutUint64(b[4:12], p.RunID)
	binary.BigEndian.PutUint32(b[12:16], p.Seq)
	binary.BigEndian.PutUint64(b[16:24], uint64(p.SentAt.UnixNano()))
}

// ParsePayload reads the token at the start of ICMP echo data. It returns
// ErrNotProbe for data without the magic or too short to hold a token.
func ParsePayload(b []byte) (Payload, error) {
	if len(b) < TokenLen {
		return Payload{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrNotProbe, len(b), TokenLen)
	}
	p, ok := parsePayload(b)
	if !ok {
		return Payload{}, fmt.Errorf("%w: magic %#08x", ErrNotProbe, binary.BigEndian.Uint32(b[0:4]))
	}
	return p, nil
}

// parsePayload is ParsePayload without the error, which allocates: the
// run's reader calls it for every datagram it reads.
func parsePayload(b []byte) (Payload, bool) {
	if len(b) < TokenLen || binary.BigEndian.Uint32(b[0:4]) != Magic {
		return Payload{}, false
	}
	return Payload{
		RunID:  binary.BigEndian.Uint64(b[4:12]),
		Seq:    binary.BigEndian.Uint32(b[12:16]),
		SentAt: time.Unix(0, int64(binary.BigEndian.Uint64(b[16:24]))),
	}, true
}
