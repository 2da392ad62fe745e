package containerd

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// tarFile is one entry of a tarball.
type tarFile struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the entries of a tarball by name.
func readTar(t *testing.T, b []byte) map[string]tarFile {
	t.Helper()
	files := map[string]tarFile{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = tarFile{hdr, data}
	}
}

func TestWriteImage(t *testing.T) {
	var buf bytes.Buffer
	pause := []byte("\x7fELF not really")
	if err := WriteImage(&buf, PauseImage, pause, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, buf.Bytes())
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"].data, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != PauseImage || len(manifest[0].Layers) != 1 {
		t.Fatalf("got manifest %+v, want one image tagged %s with one layer", manifest, PauseImage)
	}
	var config struct {
		OS     string `json:"os"`
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files[manifest[0].Config].data, &config); err != nil {
		t.Fatalf("config %s: %v", manifest[0].Config, err)
	}
	layer := files[manifest[0].Layers[0]].data
	sum := sha256.Sum256(layer)
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("got diff_ids %q, want the layer's sha256 %x", config.RootFS.DiffIDs, sum)
	}
	if config.OS != "linux" || len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != "/pause" {
		t.Errorf("got config %+v, want linux with Entrypoint [/pause]", config)
	}
	entries := readTar(t, layer)
	if f, ok := entries["pause"]; !ok || f.hdr.Mode != 0o755 || !bytes.Equal(f.data, pause) {
		t.Errorf("layer's pause is %+v, want the binary, mode 0755", f.hdr)
	}
	for _, d := range []string{"dev/", "proc/", "sys/"} {
		if f, ok := entries[d]; !ok || f.hdr.Typeflag != tar.TypeDir {
			t.Errorf("layer lacks the directory %s", d)
		}
	}
}

// TestBuildPause builds the pause program and checks that it runs, stays,
// and exits 0 on SIGTERM.
func TestBuildPause(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short: builds a Go program")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := BuildPause(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("no executable at %s: %v", bin, err)
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("pause exited by itself: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pause after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("pause ignored SIGTERM for 10 s")
	}
}
