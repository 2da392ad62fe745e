package lab

import (
	"fmt"
	"path/filepath"
	"time"
)

// StateDir holds each lab's marker (MarkerFile) and the pid file and the
// log of its background delay line (Lab.WireCommand). Down removes them.
const StateDir = "/run/cnitrace"

// MarkerFile is the file that marks the lab called name as one this tool
// built: Up creates it before the first namespace and Down and Close
// remove it after the last. List lists the labs that have one, so a lab
// named anything shows up, and namespaces someone else named like a lab
// do not.
func MarkerFile(name string) string { return filepath.Join(StateDir, name+".lab") }

// WirePIDFile is where the pid of the background delay line of the lab
// called name is recorded.
func WirePIDFile(name string) string { return filepath.Join(StateDir, name+".wire.pid") }

// WireLogFile is where the background delay line of the lab called name
// writes its standard error.
func WireLogFile(name string) string { return filepath.Join(StateDir, name+".wire.log") }

// LaneStats counts what the delay line did to one direction.
type LaneStats struct {
	Forwarded  uint64 // frames sent on after their delay
	Lost       uint64 // frames dropped at random (Impairment.Loss)
	Overflowed uint64 // frames the kernel dropped because the queue was full
	Skipped    uint64 // frames not forwarded: truncated or VLAN-offloaded
	SendErrors uint64 // frames the kernel refused to send on

	// Late is by how much forwarded frames were sent after their release
	// time (arrival, as the kernel stamped it, plus the delay), summed and
	// at most: the delay line's error. When the delay is shorter than the
	// delay line's wake-up time (tens of us on an idle VM), that time is
	// all of it. The mean is SumLate / Forwarded.
	SumLate, MaxLate time.Duration

	// Holds are the frames carrying a cnitrace probe that were forwarded,
	// with how long each was held (the first MaxProbeHolds): the delay
	// each probe was given, for comparing a trace with probe by probe.
	Holds []ProbeHold
}

// MeanLate is the mean lateness of the forwarded frames.
func (s LaneStats) MeanLate() time.Duration {
	if s.Forwarded == 0 {
		return 0
	}
	return s.SumLate / time.Duration(s.Forwarded)
}

// String summarises s on one line, in ASCII.
func (s LaneStats) String() string {
	return fmt.Sprintf("%d forwarded, %d lost, %d overflowed, %d skipped, %d send errors, late mean %s max %s",
		s.Forwarded, s.Lost, s.Overflowed, s.Skipped, s.SendErrors, formatDuration(s.MeanLate().Round(time.Microsecond)),
		formatDuration(s.MaxLate.Round(time.Microsecond)))
}

// WireStats counts what the delay line did to each direction.
type WireStats struct {
	Request LaneStats // node 1 -> node 2
	Reply   LaneStats // node 2 -> node 1
}

// String summarises s on one line.
func (s WireStats) String() string {
	return "request: " + s.Request.String() + "; reply: " + s.Reply.String()
}
