package output

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// write opens path, writes s and commits, failing t on any error.
func write(t *testing.T, path, s string) {
	t.Helper()
	f, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer f.Abort()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("commit %s: %v", path, err)
	}
}

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range entries {
		ns = append(ns, e.Name())
	}
	return ns
}

func checkContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s holds %q (%v), want %q", path, b, err, want)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

func TestStdout(t *testing.T) {
	var buf bytes.Buffer
	f, err := Open("-", &buf)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "report")
	if err := f.Commit(); err != nil || buf.String() != "report" || f.Name() != "stdout" {
		t.Errorf("got %q, name %q, commit %v; want the report on stdout", buf.String(), f.Name(), err)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Errorf(`Open("-") created a file called "-"`)
	}
}

// TestReplaceKeepsMode: an existing file is replaced whole (a reader that
// had it open still sees the old content), keeps its mode, and no other
// file is left in its directory.
func TestReplaceKeepsMode(t *testing.T) {
	for _, mode := range []fs.FileMode{0o644, 0o600, 0o755, 0o640} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "report.txt")
			if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			reader, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			write(t, path, "new")
			checkContent(t, path, "new")
			checkMode(t, path, mode)
			var b [8]byte
			if n, _ := reader.Read(b[:]); string(b[:n]) != "old" {
				t.Errorf("the replaced file, still open, holds %q, want %q: it was written in place, not replaced", b[:n], "old")
			}
			if got := names(t, dir); !slices.Equal(got, []string{"report.txt"}) {
				t.Errorf("directory holds %v, want only report.txt", got)
			}
		})
	}
}

// TestSymlinkTargetReplaced: a link to a regular file stays a link; the
// file it names is replaced, and a dangling link's file is created.
func TestSymlinkTargetReplaced(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.txt")
	if err := os.WriteFile(real, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink("real.txt", link); err != nil {
		t.Fatal(err)
	}
	chain := filepath.Join(dir, "chain.txt")
	if err := os.Symlink(link, chain); err != nil {
		t.Fatal(err)
	}
	write(t, chain, "new")
	checkContent(t, real, "new")
	checkMode(t, real, 0o644)
	for _, l := range []string{link, chain} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symbolic link (%v, %v)", l, fi.Mode(), err)
		}
	}

	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink("created.txt", dangling); err != nil {
		t.Fatal(err)
	}
	write(t, dangling, "fresh")
	checkContent(t, filepath.Join(dir, "created.txt"), "fresh")
	if got := names(t, dir); !slices.Equal(got, []string{"chain.txt", "created.txt", "dangling", "link.txt", "real.txt"}) {
		t.Errorf("directory holds %v", got)
	}
}

// TestRefused: what cannot be written is refused by Open, with the reason
// callers branch on, and nothing is created.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	linkToDir := filepath.Join(dir, "linkdir")
	if err := os.Symlink(dir, linkToDir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       error
	}{
		{"directory", dir, ErrIsDir},
		{"directory with a slash", dir + "/", ErrIsDir},
		{"link to a directory", linkToDir, ErrIsDir},
		{"missing directory", filepath.Join(dir, "missing", "x"), ErrNoDir},
		{"a file as directory", filepath.Join(file, "x"), ErrNoDir},
		{"link loop", loop, ErrNoDir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := names(t, dir)
			f, err := Open(tc.path, nil)
			if err == nil {
				f.Abort()
			}
			var pe *PathError
			if !errors.Is(err, tc.want) || !errors.As(err, &pe) || pe.Path != tc.path {
				t.Fatalf("Open(%s) = %v, want a *PathError for it wrapping %v", tc.path, err, tc.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.path+": ") || strings.Contains(msg, "\n") {
				t.Errorf("message %q is not one line starting with the path", msg)
			}
			if got := names(t, dir); !slices.Equal(got, before) {
				t.Errorf("directory went from %v to %v", before, got)
			}
		})
	}
	if _, err := Open("", nil); err == nil {
		t.Error(`Open("") worked, want an error`)
	}
}

// TestAbortLeavesTargetAlone: an aborted output never reaches its target,
// and Abort after Commit, or Commit after Abort, changes nothing.
func TestAbortLeavesTargetAlone(t *testing.T) {
	for _, tmpfile := range tmpfiles() {
		t.Run(tmpfile.name, func(t *testing.T) {
			dir := t.TempDir()
			existing := filepath.Join(dir, "existing")
			if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{existing, filepath.Join(dir, "new")} {
				f, err := open(path, nil, tmpfile.open)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprint(f, "partial")
				f.Abort()
				f.Abort()
				if err := f.Commit(); err != nil {
					t.Errorf("Commit after Abort: %v, want nil (nothing to do)", err)
				}
			}
			checkContent(t, existing, "old")
			if got := names(t, dir); !slices.Equal(got, []string{"existing"}) {
				t.Errorf("directory holds %v after Abort, want only existing", got)
			}
		})
	}
}

// TestFallbackWithoutTmpfile: on a filesystem without O_TMPFILE the
// temporary file has a name, visible while writing, gone after Commit,
// Abort and a failed Commit.
func TestFallbackWithoutTmpfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := open(path, nil, noTmpfile)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "new")
	got := names(t, dir)
	if len(got) != 2 || !strings.HasPrefix(got[0], ".report.txt.cnitrace-") {
		t.Errorf("while writing, directory holds %v, want report.txt and .report.txt.cnitrace-*", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	checkContent(t, path, "new")
	checkMode(t, path, 0o640)
	if got := names(t, dir); !slices.Equal(got, []string{"report.txt"}) {
		t.Errorf("after Commit, directory holds %v, want only report.txt", got)
	}

	// A Commit that fails (the target became a directory with something in
	// it, which rename cannot replace) removes the temporary file too.
	f, err = open(path, nil, noTmpfile)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "newer")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit over a directory worked, want an error")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"report.txt"}) {
		t.Errorf("after a failed Commit, directory holds %v, want only report.txt", got)
	}
}

// TestWriteErrorFailsCommit: after a failed write, Commit fails with that
// error and the target keeps its old content.
func TestWriteErrorFailsCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.f.Close() // every write fails from here on
	if _, err := fmt.Fprint(f, "new"); err == nil {
		t.Fatal("write to a closed file worked")
	}
	if err := f.Commit(); err == nil || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Commit = %v, want the write's error", err)
	}
	checkContent(t, path, "old")
	if got := names(t, dir); !slices.Equal(got, []string{"report.txt"}) {
		t.Errorf("directory holds %v", got)
	}
}

// tmpfiles are the two ways to open the temporary file: the system's
// (O_TMPFILE on Linux) and the named fallback.
func tmpfiles() []struct {
	name string
	open tmpfileFunc
} {
	return []struct {
		name string
		open tmpfileFunc
	}{{"system", sysTmpfile}, {"named fallback", noTmpfile}}
}

// noTmpfile is a filesystem without O_TMPFILE.
func noTmpfile(dir string, mode uint32) (*os.File, error) {
	return nil, fmt.Errorf("open %s: %w", dir, errNoTmpfile)
}
