package probe

import (
	"testing"
	"time"
)

func BenchmarkPayloadRoundTrip(b *testing.B) {
	p := Payload{RunID: 1, Seq: 2, SentAt: time.Unix(3, 4)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayload(p.Marshal(56)); err != nil {
			b.Fatal(err)
		}
	}
}
