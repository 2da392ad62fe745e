package main

import (
	"errors"
	"io"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
)

// pcapRecorder streams the probes' packets into a pcapng file as they
// are captured: the --pcap file, or a temporary one for the bundle.
type pcapRecorder struct{}

// openPcap opens the --pcap file (path), or, with no path but a bundle
// to fill, a temporary file; neither gives nil.
func openPcap(path string, forBundle bool, stdout io.Writer) (*pcapRecorder, error) {
	if path == "" && !forBundle {
		return nil, nil
	}
	return nil, cli.Usagef("--pcap: not written yet")
}

func (p *pcapRecorder) add(o capture.Observation) {}
func (p *pcapRecorder) finish(stats []capture.PointStats) error {
	return errors.New("pcap: not written yet")
}
func (p *pcapRecorder) commit() error { return errors.New("pcap: not written yet") }
func (p *pcapRecorder) abort()        {}
