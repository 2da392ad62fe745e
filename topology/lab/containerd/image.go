package containerd

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// PauseImage is the tag of the sandbox image Start builds and imports. No
// registry answers for it (.invalid): it only ever exists locally.
const PauseImage = "cnitrace.invalid/pause:1"

//go:embed testdata/pause.go
var pauseSource []byte

// BuildPause compiles the pause program (testdata/pause.go: waits for
// TERM or INT, reaps children) into dir/pause, static (CGO_ENABLED=0), for
// linux on this machine's architecture, with the go command (see
// goCommand). It returns the binary's path.
func BuildPause(ctx context.Context, dir string) (string, error) {
	goBin, err := goCommand()
	if err != nil {
		return "", fmt.Errorf("build pause: %w", err)
	}
	src := filepath.Join(dir, "pause-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", fmt.Errorf("build pause: %w", err)
	}
	files := map[string][]byte{"main.go": pauseSource, "go.mod": []byte("module pause\n\ngo 1.21\n")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			return "", fmt.Errorf("build pause: %w", err)
		}
	}
	out := filepath.Join(dir, "pause")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build pause with %s: %w%s", goBin, err, lab.QuoteOutput(msg))
	}
	return out, nil
}

// goCommand finds the go command: in PATH, in $GOROOT/bin, or in
// /usr/local/go/bin, where go.dev's tarball goes (the Makefile adds it to
// PATH; a test's environment may not).
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, p := range []string{filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go"} {
		if p, err := exec.LookPath(p); err == nil && filepath.IsAbs(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no go command in PATH, $GOROOT/bin or /usr/local/go/bin: %w", exec.ErrNotFound)
}

// WriteImage writes a docker-archive tarball (what `docker save` writes
// and `ctr images import` reads) of a one-layer image tagged tag whose
// layer holds pause as /pause, the entrypoint, and the empty directories
// runc mounts on. created stamps the layer's files and the config.
func WriteImage(w io.Writer, tag string, pause []byte, created time.Time) error {
	layer, err := pauseLayer(pause, created)
	if err != nil {
		return fmt.Errorf("write image %s: %w", tag, err)
	}
	diffID := sha256.Sum256(layer)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      created.UTC().Format(time.RFC3339),
		"config":       map[string]any{"Entrypoint": []string{"/pause"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
	})
	if err != nil {
		return fmt.Errorf("write image %s: %w", tag, err)
	}
	configID := sha256.Sum256(config)
	configName := hex.EncodeToString(configID[:]) + ".json"
	layerName := hex.EncodeToString(diffID[:]) + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{tag}, "Layers": []string{layerName}}})
	if err != nil {
		return fmt.Errorf("write image %s: %w", tag, err)
	}
	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer}, {"manifest.json", manifest}} {
		if err := writeFile(tw, f.name, f.data, 0o644, created); err != nil {
			return fmt.Errorf("write image %s: %w", tag, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write image %s: %w", tag, err)
	}
	return nil
}

// pauseLayer returns the layer tarball: /pause and the mount points.
func pauseLayer(pause []byte, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"dev/", "etc/", "proc/", "sys/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: created}); err != nil {
			return nil, err
		}
	}
	if err := writeFile(tw, "pause", pause, 0o755, created); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, name string, data []byte, mode int64, mod time.Time) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mod}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// buildImage builds the pause program into dir and packs it as the
// docker-archive tarball at path, tagged PauseImage.
func buildImage(ctx context.Context, dir, path string) error {
	bin, err := BuildPause(ctx, dir)
	if err != nil {
		return err
	}
	pause, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("read pause binary: %w", err)
	}
	var buf bytes.Buffer
	if err := WriteImage(&buf, PauseImage, pause, time.Now()); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write image %s: %w", PauseImage, err)
	}
	return nil
}
