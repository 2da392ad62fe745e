// Package cli holds the command-line conventions the project's commands
// (cnitrace, cnitrace-lab) share: exit codes, usage errors, and flag sets
// that report mistakes as errors instead of printing and exiting.
// docs/cli.md documents what a user sees.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes (docs/cli.md).
const (
	ExitOK      = 0
	ExitFailure = 1 // runtime failure: permissions, sockets, netlink
	ExitUsage   = 2 // bad flags or arguments, or a thing named that does not exist
	ExitFinding = 3 // the trace worked and the path lost probes
)

// UsageError is a mistake in what the user typed; it exits ExitUsage.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError formatted like fmt.Errorf (%w wraps).
func Usagef(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// IsUsage reports whether err is, or wraps, a UsageError.
func IsUsage(err error) bool {
	var ue UsageError
	return errors.As(err, &ue)
}

// NewFlagSet returns a flag set for the subcommand name that reports errors to ParseFlags
// instead of printing them and exiting. The flag package calls Usage on
// every parse error, so Usage stays silent; ParseFlags prints help for
// --help only.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// PrintUsage writes the synopsis and flags of program's subcommand fs to w.
func PrintUsage(w io.Writer, program string, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: %s %s %s\n\nFlags:\n", program, fs.Name(), synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// ParseFlags parses args into program's subcommand fs, turning flag errors
// and stray arguments into usage errors that name the subcommand; --help
// prints the usage to stdout and returns flag.ErrHelp, which exits ExitOK.
func ParseFlags(program string, fs *flag.FlagSet, args []string, synopsis string, stdout io.Writer) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		PrintUsage(stdout, program, fs, synopsis)
		return err
	}
	if err != nil {
		return Usagef("%s: %v (see '%s %s --help')", fs.Name(), err, program, fs.Name())
	}
	if fs.NArg() > 0 {
		return Usagef("%s: unexpected argument %q (see '%s %s --help')", fs.Name(), fs.Arg(0), program, fs.Name())
	}
	return nil
}

// Report prints err on stderr as one line prefixed with the program's
// name, then hint on a line of its own when there is one, and returns the
// exit code: ExitOK for nil and --help, ExitUsage for a UsageError,
// ExitFailure for anything else. Callers map their own findings (ExitFinding)
// before calling it.
func Report(program string, err error, hint string, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
	if hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", hint)
	}
	if IsUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}
