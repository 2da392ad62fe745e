package main

import (
	"os"
	"runtime/debug"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/report"
)

// runInfo fills the report's run block: what a ticket needs to know of
// how the report was made.
type runInfo struct{ *report.Run }

// newRunInfo starts the run block of a run started now with the command
// line args (program name first).
func newRunInfo(args []string) runInfo {
	run := &report.Run{
		Command: slices.Clone(args),
		Version: version(),
		Kernel:  kernelRelease(),
		Started: time.Now().UTC(),
	}
	run.Node, _ = os.Hostname()
	return runInfo{run}
}

// end marks the run's end: the report is being made.
func (r runInfo) end() { r.Ended = time.Now().UTC() }

// version is cnitrace's version as the build recorded it: the module's
// version, and the VCS revision (with "+dirty" for uncommitted changes)
// when built from a checkout.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return v + " " + rev
}

// kernelRelease is uname -r, or "unknown".
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
