package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/cmd/internal/output"
	"github.com/cnitrace/cnitrace/probe"
)

// pcapRecorder streams the probes' packets into a pcapng file as they are
// captured (capture.PcapNGStream: the capture readers only queue them):
// the --pcap file, opened like --out, and, for the bundle, an unnamed
// temporary file it can copy from. Its life follows the run's: openPcap
// before anything is sent, start when the capture is armed, add for every
// packet, finish once the capture is drained (the statistics blocks),
// then commit after the report, or abort.
type pcapRecorder struct {
	out    *output.File // --pcap; nil when recording for the bundle only
	tmp    *os.File     // the bundle's copy, unlinked; nil without a bundle
	tmpLen int64        // bytes written to tmp
	w      io.Writer    // out, tmp or both
	stream *capture.PcapNGStream

	finishing bool  // finish was called: the stream is closed
	err       error // finish's, for the bundle and commit
	over      bool  // committed or aborted
}

// openPcap opens the --pcap file (path), and, with a bundle to fill, a
// temporary file for it; with neither it returns nil. A --pcap path that
// cannot be written is a usage error, as for --out; stdout is refused, as
// it carries the report.
func openPcap(path string, forBundle bool, stdout io.Writer) (*pcapRecorder, error) {
	if path == "" && !forBundle {
		return nil, nil
	}
	if path == "-" {
		return nil, cli.Usagef("--pcap -: stdout carries the report; name a file, such as hops.pcapng")
	}
	p := &pcapRecorder{}
	var ws []io.Writer
	if path != "" {
		out, err := openOutput("--pcap", path, stdout)
		if err != nil {
			return nil, err
		}
		p.out = out
		ws = append(ws, out)
	}
	if forBundle {
		tmp, err := os.CreateTemp("", "cnitrace-*.pcapng")
		if err != nil {
			p.abort()
			return nil, fmt.Errorf("--bundle: create a temporary file for the pcapng: %w", err)
		}
		os.Remove(tmp.Name()) // unnamed from now on: nothing is left behind, whatever happens
		p.tmp = tmp
		ws = append(ws, countingWriter{tmp, &p.tmpLen})
	}
	p.w = io.MultiWriter(ws...)
	return p, nil
}

// name is what errors call the file.
func (p *pcapRecorder) name() string {
	if p.out != nil {
		return "--pcap " + p.out.Name()
	}
	return "the bundle's pcapng"
}

// start writes the section and interface blocks, one per point as the
// capture armed them, and starts the writer; the capture calls it
// (capture.Config.Armed) before its first packet.
func (p *pcapRecorder) start(ifaces []capture.Interface) error {
	s, err := capture.NewPcapNGStream(p.w, ifaces, pcapLabel)
	if err != nil {
		return fmt.Errorf("write %s: %w", p.name(), err)
	}
	p.stream = s
	return nil
}

// pcapLabel opens a packet's comment with its probe token: "probe seq=3
// run=00c0ffee00c0ffee". The capture filter passes only payloads that open
// with the magic, so only a truncated token has none.
func pcapLabel(o capture.Observation) string {
	pl, err := probe.ParsePayload(o.Payload)
	if err != nil {
		return ""
	}
	return capture.ProbeLabel(pl.RunID, pl.Seq)
}

// add queues one captured packet, from a capture reader goroutine. The
// stream is set before the first one (start runs before the readers).
func (p *pcapRecorder) add(o capture.Observation) {
	if p.stream != nil {
		p.stream.Add(o)
	}
}

// finish writes what is still queued and the statistics blocks (the
// capture's counters, once drained), and says on stderr when packets had
// to be left out of the file because it fell behind.
func (p *pcapRecorder) finish(stats []capture.PointStats, stderr io.Writer) error {
	switch {
	case p.finishing:
		return errors.New("finish the pcapng: finished already")
	case p.stream == nil:
		p.err = fmt.Errorf("write %s: the capture never started", p.name())
		return p.err
	}
	p.finishing = true
	if err := p.stream.Close(stats); err != nil {
		p.err = fmt.Errorf("write %s: %w", p.name(), err)
		return p.err
	}
	left := p.stream.LeftOut()
	for _, s := range stats {
		if n := left[s.Point]; n > 0 {
			fmt.Fprintf(stderr, "cnitrace: warning: %s lacks %d packets of %s: writing it fell %d packets behind the capture (the report has them)\n", p.name(), n, s.Point, capture.MaxQueued)
		}
	}
	return nil
}

// size is the size of the finished pcapng, for the bundle's tar header.
func (p *pcapRecorder) size() int64 { return p.tmpLen }

// writeTo copies the finished pcapng into the bundle.
func (p *pcapRecorder) writeTo(w io.Writer) (int64, error) {
	switch {
	case p.err != nil:
		return 0, p.err
	case p.tmp == nil || !p.finishing || p.over:
		return 0, errors.New("copy the pcapng into the bundle: it is not finished")
	}
	return io.Copy(w, io.NewSectionReader(p.tmp, 0, p.tmpLen))
}

// commit completes the --pcap file (links it into place) and drops the
// bundle's copy; finish must have succeeded, else the file is discarded
// and that is the error.
func (p *pcapRecorder) commit() error {
	switch {
	case p.over:
		return nil
	case p.err != nil:
		p.abort()
		return p.err
	case !p.finishing:
		p.abort()
		return fmt.Errorf("write %s: not finished", p.name())
	}
	p.over = true
	if p.tmp != nil {
		p.tmp.Close()
	}
	if p.out != nil {
		if err := p.out.Commit(); err != nil {
			return fmt.Errorf("write %s: %w", p.name(), err)
		}
	}
	return nil
}

// abort discards the file: a --pcap path keeps what it held before (or
// never appears). After commit it does nothing.
func (p *pcapRecorder) abort() {
	if p.over {
		return
	}
	p.over = true
	if p.stream != nil && !p.finishing {
		p.stream.Close(nil) // stops its goroutine; the file goes anyway
	}
	if p.tmp != nil {
		p.tmp.Close()
	}
	if p.out != nil {
		p.out.Abort()
	}
}

// countingWriter counts what it writes to w in *n.
type countingWriter struct {
	w io.Writer
	n *int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	*c.n += int64(n)
	return n, err
}
