// Package output opens the files a command writes its results to (trace's
// --out, and every output flag after it) so that what is wrong with a path
// is found before the command does anything, and so that a run that fails
// or is killed leaves nothing behind:
//
//   - "-" is the command's stdout.
//   - A regular file, or a name that does not exist yet, is written to an
//     unnamed temporary file in the target's directory (O_TMPFILE) that
//     Commit links into place atomically. A file replaced keeps its mode
//     (and its owner, when the process may set it); a new file gets 0644
//     minus the umask, as a shell redirect would. Where the filesystem has
//     no O_TMPFILE, the temporary file has a name (.NAME.cnitrace-*) and is
//     removed on every exit path but SIGKILL.
//   - A symbolic link is followed: the file it names is replaced, the link
//     stays. A link into /proc that names an open file (/dev/stdout,
//     /proc/self/fd/N) is written to that open file.
//   - A FIFO or a character device (/dev/null, /dev/full, a terminal) is
//     written in place: opened without O_CREAT or O_TRUNC, never renamed over.
//   - Anything else is refused before anything is written, with a
//     *PathError: a directory, a directory that does not exist, a file or
//     directory that cannot be written (read-only, no permission, a pseudo
//     filesystem such as /proc or /sys), a FIFO that has no reader, a
//     socket or a block device, a file that is a mount point.
package output

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Why Open refused a path. A *PathError wraps one of them, usually along
// with the system's error; callers branch with errors.Is.
var (
	ErrIsDir       = errors.New("is a directory")
	ErrNoDir       = errors.New("its directory does not exist")
	ErrNotWritable = errors.New("cannot be written")
	ErrNoReader    = errors.New("is a FIFO that no process reads")
	ErrNotFile     = errors.New("is not a regular file, a FIFO or a character device")
	ErrMountPoint  = errors.New("is a mount point, which cannot be replaced")
)

// PathError is what Open found wrong with a path before writing anything.
// It says so in one line: "PATH: REASON[: the system's error]".
type PathError struct {
	Path string // as given to Open
	Err  error  // wraps one of the Err* reasons above
}

func (e *PathError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// refuse returns a *PathError for path with reason and, when there is
// one, the system's error that showed it.
func refuse(path string, reason, cause error) error {
	if cause == nil {
		return &PathError{Path: path, Err: reason}
	}
	return &PathError{Path: path, Err: fmt.Errorf("%w: %w", reason, cause)}
}

// File is an output opened by Open. Write to it, then call Commit when
// the whole output is written, or Abort to discard it; Abort after Commit
// does nothing, so callers defer Abort right after Open.
//
// A File is not safe for concurrent use.
type File struct {
	name string
	w    io.Writer
	f    *os.File     // nil for stdout, which File never closes
	rep  *replacement // nil unless a regular file is replaced on Commit
	err  error        // the first write error; Commit returns it
	done bool
}

// Open checks path and opens it for writing, as the package comment says;
// "-" is stdout. A path that cannot be written to is a *PathError; other
// errors (too many open files, say) are returned as they are.
func Open(path string, stdout io.Writer) (*File, error) {
	return open(path, stdout, sysTmpfile)
}

// tmpfileFunc opens an unnamed temporary file in dir, with mode before the
// umask; errNoTmpfile says the filesystem cannot.
type tmpfileFunc func(dir string, mode uint32) (*os.File, error)

// errNoTmpfile says the filesystem (or the system) has no O_TMPFILE.
var errNoTmpfile = errors.New("no O_TMPFILE")

// open is Open with the way to open unnamed temporary files, so that tests
// can take the fallback a filesystem without O_TMPFILE takes.
func open(path string, stdout io.Writer, tmpfile tmpfileFunc) (*File, error) {
	if path == "-" {
		return &File{name: "stdout", w: stdout}, nil
	}
	if path == "" {
		return nil, errors.New("open output: no path given")
	}
	t, err := inspect(path)
	if err != nil {
		return nil, err
	}
	if t.kind != kindRegular && t.kind != kindNew {
		f, err := openInPlace(path, t)
		if err != nil {
			return nil, err
		}
		return &File{name: path, w: f, f: f}, nil
	}
	rep, f, err := startReplacement(path, t, tmpfile)
	if err != nil {
		return nil, err
	}
	return &File{name: path, w: f, f: f, rep: rep}, nil
}

// Name returns the path as given to Open, or "stdout" for "-".
func (f *File) Name() string { return f.name }

// Write writes p to the output. After a failed write, every later Write
// and Commit return that first error.
func (f *File) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.done {
		return 0, fmt.Errorf("write %s: %w", f.name, os.ErrClosed)
	}
	n, err := f.w.Write(p)
	if err != nil {
		f.err = err // an *os.File's names the path already
	}
	return n, err
}

// Commit completes the output: it closes a file written in place, or
// moves a replacement into place (after fsync). It returns the first
// write error instead, after discarding the replacement. Only the first
// call does anything.
func (f *File) Commit() error {
	if f.done {
		return nil
	}
	if f.err != nil {
		f.Abort()
		return f.err
	}
	f.done = true
	switch {
	case f.rep != nil:
		return f.rep.commit(f.f)
	case f.f != nil:
		if err := f.f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", f.name, err)
		}
	}
	return nil
}

// Abort discards the output: a replacement is dropped (the target keeps
// its old content, or is never created) and a file written in place is
// closed. It does nothing after Commit or a first Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	if f.f != nil {
		f.f.Close()
	}
	if f.rep != nil {
		f.rep.discard()
	}
}
