package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/cmd/internal/output"
)

// openOutput opens the output a flag names (--out, and every output flag
// after it) through package output: empty or "-" is stdout. What is wrong
// with the path is a usage error naming the flag, the path, why and what
// to do, found before anything is probed.
func openOutput(flag, path string, stdout io.Writer) (*output.File, error) {
	if path == "" {
		path = "-"
	}
	f, err := output.Open(path, stdout)
	var pe *output.PathError
	switch {
	case errors.As(err, &pe):
		return nil, cli.Usagef("%s %v (%s)", flag, err, outputAdvice(flag, pe))
	case err != nil:
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, nil
}

// outputAdvice says what to do about a path output refused, for the
// output flag that named it.
func outputAdvice(flag string, pe *output.PathError) string {
	orStdout := ", or - for stdout"
	if flag != "--out" { // stdout carries the report: only --out may take it
		orStdout = ""
	}
	switch {
	case errors.Is(pe, output.ErrIsDir):
		return "name a file in it, such as " + filepath.Join(pe.Path, exampleOutput(flag))
	case errors.Is(pe, output.ErrNoDir):
		return "create the directory first, or name a file in one that exists"
	case errors.Is(pe, output.ErrNoReader):
		return "start the process that reads it first"
	case errors.Is(pe, output.ErrMountPoint):
		return "write to a file of its own and copy it there"
	case errors.Is(pe, output.ErrNotFile):
		return "name a regular file, a FIFO, a character device" + orStdout
	}
	return "name a file in a directory you may write" + orStdout
}

// exampleOutput is a file name that suits what flag writes.
func exampleOutput(flag string) string {
	switch flag {
	case "--pcap":
		return "hops.pcapng"
	case "--bundle":
		return "evidence.tar.gz"
	case "--ready-file":
		return "ready"
	}
	return "report.txt"
}

// checkOutputsDistinct refuses two output flags that name the same file:
// the last completed would silently replace the other.
func (c *traceConfig) checkOutputsDistinct() error {
	type named struct{ flag, path string }
	var outs []named
	for _, o := range []named{{"--out", c.out}, {"--pcap", c.pcap}, {"--bundle", c.bundle}} {
		if o.path == "" || o.path == "-" {
			continue
		}
		for _, prev := range outs {
			if sameFile(prev.path, o.path) {
				return cli.Usagef("%s %s and %s %s name the same file: give each output a file of its own", prev.flag, prev.path, o.flag, o.path)
			}
		}
		outs = append(outs, o)
	}
	return nil
}

// sameFile reports whether two paths name one file: the same path once
// made absolute, or, for files that exist, the same inode (a link).
func sameFile(a, b string) bool {
	if absA, err := filepath.Abs(a); err == nil {
		if absB, err := filepath.Abs(b); err == nil && absA == absB {
			return true
		}
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
