package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// streamLabel stands in for cnitrace trace's label, which reads the probe
// token: here the ICMP sequence.
func streamLabel(o Observation) string { return fmt.Sprintf("test seq=%d", o.ICMPSeq) }

// probesAt returns, for n probes sent every interval, what testIfaces'
// two points see: request p0 TX then p1 TX, reply p1 RX then p0 RX. With
// same, the request's two stamps and the reply's are equal, as inherited
// RX stamps are.
func probesAt(t *testing.T, n int, interval time.Duration, same bool) []Observation {
	t.Helper()
	base := testObservations(t)
	start := time.Unix(1700000000, 0)
	var obs []Observation
	for seq := range n {
		at := start.Add(time.Duration(seq) * interval)
		for i, o := range base {
			o.ICMPSeq = uint16(seq)
			o.At = at.Add(time.Duration(i) * 10 * time.Microsecond)
			if same {
				o.At = at.Add(time.Duration(i/2) * 10 * time.Microsecond)
			}
			obs = append(obs, o)
		}
	}
	return obs
}

// TestPcapNGStreamOrders hands packets over as two capture readers do,
// each its own point's packets and concurrently, so their order in the
// queue is mixed (within half a ReorderWindow of capture time, however
// the goroutines run): the file holds every packet once, in time order,
// equal stamps in path order, each with its label, then the statistics.
func TestPcapNGStreamOrders(t *testing.T) {
	for _, same := range []bool{false, true} {
		t.Run(fmt.Sprintf("equal stamps %v", same), func(t *testing.T) {
			want := probesAt(t, 200, ReorderWindow/400, same)
			var buf bytes.Buffer
			s, err := NewPcapNGStream(&buf, testIfaces(), streamLabel)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for _, point := range []string{"p1", "p0"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, o := range want {
						if o.Point == point {
							s.Add(o)
						}
					}
				}()
			}
			wg.Wait()
			stats := []PointStats{{Point: "p0", Packets: 400}, {Point: "p1", Packets: 400}}
			if err := s.Close(stats); err != nil {
				t.Fatal(err)
			}
			got := readStream(t, buf.Bytes())
			if len(got.obs) != len(want) {
				t.Fatalf("got %d packets, want %d", len(got.obs), len(want))
			}
			for i := range want {
				g, w := got.obs[i], want[i]
				// The frames are all alike: the label (of the observation
				// added) tells the probes apart.
				if g.Point != w.Point || !g.At.Equal(w.At) || g.IsReply() != w.IsReply() {
					t.Fatalf("packet %d: got %s reply=%v at %v, want %s reply=%v at %v", i, g.Point, g.IsReply(), g.At, w.Point, w.IsReply(), w.At)
				}
				if c := got.comments[i]; !strings.HasPrefix(c, fmt.Sprintf("test seq=%d point=%s ", w.ICMPSeq, w.Point)) {
					t.Fatalf("packet %d: comment %q, want it to open with test seq=%d point=%s", i, c, w.ICMPSeq, w.Point)
				}
			}
			for id := range 2 {
				if st, ok := got.stats[id]; !ok || st.PacketsReceived != 400 || st.PacketsDropped != 0 {
					t.Errorf("interface %d: got statistics %+v (%v), want 400 received, none dropped", id, st, ok)
				}
			}
			if err := s.Close(stats); err == nil {
				t.Error("a second Close: got no error")
			}
			s.Add(want[0]) // ignored, not a panic
		})
	}
}

type streamed struct {
	obs      []Observation
	comments []string
	stats    map[int]pcapgo.NgInterfaceStatistics
}

// readStream reads a stream's file: observations (ReadPcapNG), the raw
// comments and the statistics (pcapgo).
func readStream(t *testing.T, b []byte) streamed {
	t.Helper()
	obs, err := ReadPcapNG(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := streamed{obs: obs, stats: map[int]pcapgo.NgInterfaceStatistics{}}
	nr, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{
		WantMixedLinkType:  true,
		StatisticsCallback: func(id int, s pcapgo.NgInterfaceStatistics) { r.stats[id] = s },
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, _, opts, err := nr.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			t.Fatal(err)
		}
		r.comments = append(r.comments, strings.Join(opts.Comments, "|"))
	}
}

// TestPcapNGStreamStreams: packets reach the file while the run goes on,
// once they are ReorderWindow old and the buffer is full, not at Close.
func TestPcapNGStreamStreams(t *testing.T) {
	w := &gateWriter{open: make(chan struct{})}
	close(w.open)
	s, err := NewPcapNGStream(w, testIfaces(), nil)
	if err != nil {
		t.Fatal(err)
	}
	header := w.size()
	obs := probesAt(t, 1000, time.Millisecond, false) // 1 s of probes, some 500 KB
	for _, o := range obs {
		s.Add(o)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.size() < header+256<<10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := w.size(); got < header+256<<10 {
		t.Errorf("before Close the file holds %d bytes, want the header (%d) and at least 256 KiB of packets", got, header)
	}
	if err := s.Close(nil); err != nil {
		t.Fatal(err)
	}
	if got := readStream(t, w.bytes()); len(got.obs) != len(obs) || len(got.stats) != 0 {
		t.Errorf("got %d packets and %d statistics blocks, want %d and none", len(got.obs), len(got.stats), len(obs))
	}
}

// TestPcapNGStreamLeavesOut stalls the file: Add never waits for it, the
// packets beyond MaxQueued are left out and counted, and what the file
// holds and its statistics say so.
func TestPcapNGStreamLeavesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in short mode: queues some 200,000 packets")
	}
	w := &gateWriter{open: make(chan struct{}), passes: 1} // the header only
	s, err := NewPcapNGStream(w, testIfaces(), nil)
	if err != nil {
		t.Fatal(err)
	}
	obs := probesAt(t, 3*MaxQueued/4, time.Second, false) // 1 s apart: each is written as soon as the next arrives
	start := time.Now()
	for _, o := range obs {
		s.Add(o)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d Adds took %v while the file was stalled", len(obs), d)
	}
	left := s.LeftOut()
	if left["p0"] == 0 || left["p1"] == 0 {
		t.Fatalf("with the file stalled, got %v packets left out, want some of both points", left)
	}
	close(w.open)
	stats := []PointStats{{Point: "p0", Packets: uint64(len(obs) / 2)}, {Point: "p1", Packets: uint64(len(obs) / 2)}}
	if err := s.Close(stats); err != nil {
		t.Fatal(err)
	}
	got := readStream(t, w.bytes())
	if n := len(got.obs) + int(left["p0"]+left["p1"]); n != len(obs) {
		t.Errorf("got %d packets written and %v left out, want them to add up to %d", len(got.obs), left, len(obs))
	}
	for id, point := range []string{"p0", "p1"} {
		written := 0
		for _, o := range got.obs {
			if o.Point == point {
				written++
			}
		}
		want := fmt.Sprintf("written=%d left_out=%d", written, left[point])
		if c := got.stats[id].Comment; !strings.HasSuffix(c, want) {
			t.Errorf("interface %d: statistics comment %q, want it to end %q", id, c, want)
		}
	}
	if !slices.IsSortedFunc(got.obs, func(a, b Observation) int { return a.At.Compare(b.At) }) {
		t.Error("the packets written are not in time order")
	}
}

// TestPcapNGStreamWriteError: a file that fails is Close's error, and Add
// stays cheap meanwhile.
func TestPcapNGStreamWriteError(t *testing.T) {
	if _, err := NewPcapNGStream(failWriter{}, testIfaces(), nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("header to a failing file: got error %v", err)
	}
	w := &gateWriter{open: make(chan struct{}), passes: 1, fail: true}
	close(w.open)
	s, err := NewPcapNGStream(w, testIfaces(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range probesAt(t, 2000, time.Second, false) {
		s.Add(o)
	}
	if err := s.Close(nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("got error %v, want the file's", err)
	}
}

// gateWriter passes its first passes writes (all when 0), then blocks the
// others until open is closed, and then fails them if fail is set.
type gateWriter struct {
	open   chan struct{}
	passes int
	fail   bool

	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if w.passes == 0 || n > w.passes {
		<-w.open
		if w.fail {
			return 0, errors.New("disk on fire")
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *gateWriter) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
}

func (w *gateWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.buf.Bytes())
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestPcapNGStreamFollowsTheLag hands packets over as a session's reader
// that scans every 250 ms does (a slow run's): each scan the packets of
// p0 since the last one, then p1's, so p1's oldest come some 250 ms after
// p0's newest, beyond ReorderWindow; the writer takes each ring's batch
// on its own, as it may when it runs on another CPU. With the lag the interfaces plan
// (Interface.Lag) the file is in time order throughout; without it the
// window widens at the first late packet, and from the second scan on the
// file is in time order again. Every packet is there either way.
func TestPcapNGStreamFollowsTheLag(t *testing.T) {
	const gap = 250 * time.Millisecond
	obs := probesAt(t, 150, 10*time.Millisecond, false)
	start := obs[0].At
	var batches [][]Observation // each scan's p0 packets, then its p1 packets
	for _, o := range obs {
		j := 2 * int(o.At.Sub(start)/gap)
		if o.Point == "p1" {
			j++
		}
		for len(batches) <= j {
			batches = append(batches, nil)
		}
		batches[j] = append(batches[j], o)
	}
	for _, planned := range []bool{true, false} {
		t.Run(fmt.Sprintf("lag planned %v", planned), func(t *testing.T) {
			ifaces := testIfaces()
			if planned {
				for i := range ifaces {
					ifaces[i].Lag = ringRetire + gap
				}
			}
			var buf bytes.Buffer
			s, err := NewPcapNGStream(&buf, ifaces, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range batches {
				for _, o := range batch {
					s.Add(o)
				}
				waitTaken(s)
			}
			if err := s.Close(nil); err != nil {
				t.Fatal(err)
			}
			got := readStream(t, buf.Bytes()).obs
			if len(got) != len(obs) {
				t.Fatalf("got %d packets, want %d", len(got), len(obs))
			}
			from := 0
			if !planned {
				from = slices.IndexFunc(got, func(o Observation) bool { return !o.At.Before(start.Add(gap)) })
			}
			for i := from + 1; i < len(got); i++ {
				if got[i].At.Before(got[i-1].At) {
					t.Fatalf("packet %d (%s at %v) is older than the one before it (%s at %v)", i, got[i].Point, got[i].At.Sub(start), got[i-1].Point, got[i-1].At.Sub(start))
				}
			}
		})
	}
}

// waitTaken waits until the stream's writer took what was queued.
func waitTaken(s *PcapNGStream) {
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}
