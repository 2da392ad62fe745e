package output

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// newFileMode is the mode of a new output file before the umask, as a
// shell redirect creates it.
const newFileMode = 0o644

// replacement is a regular file being written beside its target and moved
// over it on Commit.
type replacement struct {
	target string      // the file to create or replace
	old    fs.FileInfo // the file replaced; nil for a new file
	named  string      // the temporary file's name; "" for an unnamed (O_TMPFILE) one
}

// startReplacement opens the temporary file that will replace (or
// become) t: unnamed where the filesystem allows, else named. Creating it
// is what proves, before anything is written, that the directory takes
// new files.
func startReplacement(path string, t target, tmpfile tmpfileFunc) (*replacement, *os.File, error) {
	dir := filepath.Dir(t.path)
	rep := &replacement{target: t.path, old: t.info}
	f, err := tmpfile(dir, newFileMode)
	if errors.Is(err, errNoTmpfile) {
		f, rep.named, err = createNamed(dir, filepath.Base(t.path))
	}
	if err != nil {
		return nil, nil, createError(path, dir, err)
	}
	return rep, f, nil
}

// createError says why no file could be created in dir for path.
func createError(path, dir string, err error) error {
	if resourceError(err) {
		return fmt.Errorf("create a file in %s for %s: %w", dir, path, err)
	}
	return refuse(path, ErrNotWritable, fmt.Errorf("create a file in %s: %w", dir, err))
}

// maxNameTries bounds the attempts at a fresh temporary name.
const maxNameTries = 100

// tempName returns a fresh name for a temporary file beside base in dir:
// hidden, naming what it is for.
func tempName(dir, base string) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("choose a temporary name: %w", err)
	}
	return filepath.Join(dir, "."+base+".cnitrace-"+hex.EncodeToString(b)), nil
}

// createNamed creates a new temporary file beside base in dir, mode
// newFileMode minus the umask, and returns it with its name.
func createNamed(dir, base string) (*os.File, string, error) {
	for range maxNameTries {
		name, err := tempName(dir, base)
		if err != nil {
			return nil, "", err
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, newFileMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("create a temporary file in %s: no free name in %d tries", dir, maxNameTries)
}

// commit moves f, the complete output, over the target: it is flushed to
// disk, given the replaced file's mode (and owner, when the process may
// set it), then linked or renamed into place, so that a reader sees the
// old file or the new one, never a part. On error the target is left as
// it was and no temporary file remains.
func (r *replacement) commit(f *os.File) error {
	err := r.finish(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the new %s: %w", r.target, cerr)
	}
	if err != nil {
		r.discard()
		return err
	}
	return nil
}

// finish does commit's work but for closing f.
func (r *replacement) finish(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", r.target, err)
	}
	if r.old != nil {
		if err := keepAttributes(f, r.old); err != nil {
			return fmt.Errorf("keep the mode of %s: %w", r.target, err)
		}
	}
	if r.named != "" {
		if err := os.Rename(r.named, r.target); err != nil {
			return fmt.Errorf("move the new %s into place: %w", r.target, err)
		}
		r.named = ""
		return nil
	}
	return r.linkIntoPlace(f)
}

// linkIntoPlace gives the unnamed file f a name: the target's itself when
// there is none yet, else a temporary one it is then renamed from, which
// only a SIGKILL between the two calls could leave behind.
func (r *replacement) linkIntoPlace(f *os.File) error {
	if r.old == nil {
		err := linkTmpfile(f, r.target)
		if !errors.Is(err, fs.ErrExist) {
			return wrapLink(r.target, err)
		}
		// Someone created the target meanwhile: replace it, as if it had been there.
	}
	for range maxNameTries {
		name, err := tempName(filepath.Dir(r.target), filepath.Base(r.target))
		if err != nil {
			return err
		}
		err = linkTmpfile(f, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return wrapLink(r.target, err)
		}
		r.named = name // discard removes it if the rename fails
		if err := os.Rename(name, r.target); err != nil {
			return fmt.Errorf("move the new %s into place: %w", r.target, err)
		}
		r.named = ""
		return nil
	}
	return fmt.Errorf("link the new %s: no free temporary name in %d tries", r.target, maxNameTries)
}

func wrapLink(target string, err error) error {
	if err != nil {
		return fmt.Errorf("link the new %s into place: %w", target, err)
	}
	return nil
}

// discard removes the temporary file if it has a name; an unnamed one
// disappears with its last descriptor.
func (r *replacement) discard() {
	if r.named != "" {
		os.Remove(r.named)
		r.named = ""
	}
}
