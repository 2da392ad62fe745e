package main

import (
	"context"
	"errors"
	"io"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

// evidence is what a trace hands over besides the report: the probes'
// packets as pcapng (--pcap) and the bundle (--bundle: the report in every
// format, the pcapng, the path and the node's state). Like --out, both
// files are opened before anything is sent and completed only once the
// report is out; every other way out discards them.
type evidence struct {
	pcap   *pcapRecorder // nil without --pcap and --bundle
	bundle *bundleWriter // nil without --bundle
}

// openEvidence opens the files --pcap and --bundle name. A path that
// cannot be written is a usage error naming the flag, as for --out.
func openEvidence(c *traceConfig, stdout io.Writer) (*evidence, error) {
	if c.bundle != "" {
		if _, _, err := c.resolveHostRoot(); err != nil { // a bad --host-root, before anything is sent
			return nil, err
		}
	}
	e := &evidence{}
	var err error
	if e.bundle, err = openBundle(c.bundle, stdout); err != nil {
		return nil, err
	}
	if e.pcap, err = openPcap(c.pcap, e.bundle != nil, stdout); err != nil {
		e.abort()
		return nil, err
	}
	return e, nil
}

// snapshot takes the node's and the pod's network state for the bundle,
// at the start of the run, before any probe is sent.
func (e *evidence) snapshot(ctx context.Context, c *traceConfig, pod, node *topology.NetNS, path *topology.Path, stderr io.Writer) {
	if e.bundle != nil {
		e.bundle.snapshot(ctx, c, pod, node, path, stderr)
	}
}

// keepFrames says whether the capture must keep every packet's frame.
func (e *evidence) keepFrames() bool { return e.pcap != nil }

// armed starts the pcapng with the capture's points, as their rings
// opened, before the first packet (capture.Config.Armed).
func (e *evidence) armed(ifaces []capture.Interface) error {
	if e.pcap == nil {
		return nil
	}
	return e.pcap.start(ifaces)
}

// observe takes one captured packet, from a capture reader goroutine.
func (e *evidence) observe(o capture.Observation) {
	if e.pcap != nil {
		e.pcap.add(o)
	}
}

// captured completes the pcapng with the capture's counters, once the
// capture is drained; warnings go to stderr.
func (e *evidence) captured(stats []capture.PointStats, stderr io.Writer) error {
	if e.pcap == nil {
		return nil
	}
	return e.pcap.finish(stats, stderr)
}

// finish writes the bundle and completes both files, after the report is
// out.
func (e *evidence) finish(r *report.Result, path *topology.Path, stderr io.Writer) error {
	if e.bundle != nil {
		if err := e.bundle.write(r, path, e.pcap, stderr); err != nil {
			return err
		}
	}
	var errs []error
	if e.pcap != nil {
		errs = append(errs, e.pcap.commit())
	}
	if e.bundle != nil {
		errs = append(errs, e.bundle.commit())
	}
	return errors.Join(errs...)
}

// abort discards both files; it does nothing for those already completed.
func (e *evidence) abort() {
	if e.pcap != nil {
		e.pcap.abort()
	}
	if e.bundle != nil {
		e.bundle.abort()
	}
}
