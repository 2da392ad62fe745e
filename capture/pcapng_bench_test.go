package capture

import (
	"io"
	"testing"
	"time"
)

// benchLabel costs what cnitrace trace's label does: read the token, make
// the label (probe.ParsePayload reads a few fixed fields; ICMPSeq stands
// in for it here).
func benchLabel(o Observation) string { return ProbeLabel(0x00c0ffee00c0ffee, uint32(o.ICMPSeq)) }

// BenchmarkPcapNGWriterPacket is the writer goroutine's cost of one
// packet: label, comment, enhanced packet block, into the buffer (the
// file's write calls are amortised over 64 KiB).
func BenchmarkPcapNGWriterPacket(b *testing.B) {
	pw, err := NewPcapNGWriter(io.Discard, testIfaces())
	if err != nil {
		b.Fatal(err)
	}
	o := testObservations(b)[0]
	b.ReportAllocs()
	for b.Loop() {
		if err := pw.WritePacket(o, benchLabel(o)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPcapNGStreamAdd is what a capture reader pays per packet with
// --pcap: one Add, while the writer goroutine drains the queue (the
// benchmark lets it catch up, untimed, every 1024 packets, as a reader at
// a realistic rate would).
func BenchmarkPcapNGStreamAdd(b *testing.B) {
	s, err := NewPcapNGStream(io.Discard, testIfaces(), benchLabel)
	if err != nil {
		b.Fatal(err)
	}
	o := testObservations(b)[0]
	start := time.Unix(1700000000, 0)
	b.ReportAllocs()
	for i := range b.N {
		o.At = start.Add(time.Duration(i) * 10 * time.Microsecond)
		s.Add(o)
		if i%1024 == 1023 {
			b.StopTimer()
			s.waitQueued(0)
			b.StartTimer()
		}
	}
	b.StopTimer()
	closeBench(b, s)
}

// BenchmarkPcapNGStream is the whole way per packet: Add, then on the
// writer goroutine reorder, label, encode, into the buffer, until Close
// has written the last. Adds wait for the writer every 1024 packets, so
// that none is left out.
func BenchmarkPcapNGStream(b *testing.B) {
	s, err := NewPcapNGStream(io.Discard, testIfaces(), benchLabel)
	if err != nil {
		b.Fatal(err)
	}
	o := testObservations(b)[0]
	start := time.Unix(1700000000, 0)
	b.ReportAllocs()
	for i := range b.N {
		o.At = start.Add(time.Duration(i) * 10 * time.Microsecond)
		s.Add(o)
		if i%1024 == 1023 {
			s.waitQueued(0)
		}
	}
	closeBench(b, s)
}

func closeBench(b *testing.B, s *PcapNGStream) {
	b.Helper()
	if err := s.Close(nil); err != nil {
		b.Fatal(err)
	}
	if left := s.LeftOut(); left != nil {
		b.Fatalf("left out %v", left)
	}
}

// waitQueued waits until at most n packets wait for the writer goroutine.
func (s *PcapNGStream) waitQueued(n int) {
	for {
		s.mu.Lock()
		queued := len(s.queue)
		s.mu.Unlock()
		if queued <= n {
			return
		}
		time.Sleep(10 * time.Microsecond)
	}
}
