//go:build linux

package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "rewrite docs/img/report.png from the golden fixture's screenshot")

// screenshotDoc is the screenshot docs/html-report.md and the README show.
const screenshotDoc = "../docs/img/report.png"

// chromiumTimeout bounds one run of Chromium; a run takes about 2 s on a
// 2-core machine.
const chromiumTimeout = 60 * time.Second

// TestPrivilegedHTMLInChromium loads each HTML fixture from disk in headless
// Chromium, started in a new, empty network namespace (no interface but a
// loopback that is down: there is no network to reach, and the test's own
// netns is never touched), and checks what a reader gets: the rendered DOM
// has the verdict, every point and every segment; the page made no network
// request (Chromium's net log) and broke no Content-Security-Policy rule
// (its console); and it keeps a screenshot as an artifact, in
// $CNITRACE_ARTIFACTS when set. Two control pages prove that the net log
// and the console see a page that does fetch.
func TestPrivilegedHTMLInChromium(t *testing.T) {
	bin := requireChromium(t)
	pages, art := t.TempDir(), artifactDir(t)
	start := time.Now()
	for _, f := range htmlFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			page := filepath.Join(pages, "report-"+f.name+".html")
			if err := os.WriteFile(page, []byte(renderHTMLString(t, f.r)), 0o644); err != nil {
				t.Fatal(err)
			}
			shot := filepath.Join(art, "report-"+f.name+".png")
			got := runChromium(t, bin, page, shot)
			doc, err := html.Parse(bytes.NewReader(got.dom))
			if err != nil {
				t.Fatalf("parse the DOM Chromium dumped: %v", err)
			}
			checkHooks(t, doc, f.r)
			checkTree(t, doc)
			checkSelfContained(t, string(got.dom))
			for _, u := range got.pageRequests {
				t.Errorf("the page requested %s, want no network request", u)
			}
			for _, c := range got.console {
				t.Errorf("got console message %s, want none", c)
			}
			checkPNG(t, shot)
			t.Logf("screenshot: %s", shot)
			if *updateScreenshot && f.name == "golden" {
				writeDocScreenshot(t, shot)
			}
		})
	}
	t.Run("controls", func(t *testing.T) { chromiumControls(t, bin, pages) })
	t.Logf("all Chromium runs took %v", time.Since(start).Round(time.Millisecond))
}

// chromiumControls loads pages that do fetch: without a policy, the net
// log must show the page's requests; with the report's policy, the
// requests must be blocked before the network and the console must say
// so. Without them, a silent net log and console prove nothing.
func chromiumControls(t *testing.T, bin, dir string) {
	const body = `<title>canary</title><style>body { background: url(http://192.0.2.7/bg.png) }</style></head><body><img src="https://canary.example/a.png">`
	const csp = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`
	open := filepath.Join(dir, "canary.html")
	closed := filepath.Join(dir, "canary-csp.html")
	if err := os.WriteFile(open, []byte("<!DOCTYPE html><html><head>"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(closed, []byte("<!DOCTYPE html><html><head>"+csp+body), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runChromium(t, bin, open, "")
	if want := []string{"http://192.0.2.7/bg.png", "https://canary.example/a.png"}; !containsAll(got.pageRequests, want...) {
		t.Errorf("got page requests %q from a page that fetches, want %q among them", got.pageRequests, want)
	}
	got = runChromium(t, bin, closed, "")
	if len(got.pageRequests) > 0 {
		t.Errorf("got page requests %q through the report's Content-Security-Policy, want none", got.pageRequests)
	}
	if !slices.ContainsFunc(got.console, func(c string) bool { return strings.Contains(c, "violates the following Content Security Policy") }) {
		t.Errorf("got console %q from a page the policy blocked, want a violation", got.console)
	}
}

// requireChromium returns Chromium's path, or skips t when it cannot run
// it here as the test must (root, for a new network namespace; Chromium
// installed), as labtest.Require does: with CI=true, where these tests
// must run for real, it fails instead.
func requireChromium(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "skipping: needs root (CAP_SYS_ADMIN) to start Chromium in a new network namespace"
	case err != nil:
		reason = fmt.Sprintf("skipping: no Chromium (Debian packages chromium, chromium-driver: make deps): %v", err)
	default:
		err = inNewNetNS(exec.Command(bin, "--version")).Run()
		if err == nil {
			return bin
		}
		if !errors.Is(err, os.ErrPermission) {
			t.Fatalf("run chromium --version in a new netns: %v", err)
		}
		reason = fmt.Sprintf("skipping: permission denied (needs CAP_SYS_ADMIN for a new netns): %v", err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", strings.TrimPrefix(reason, "skipping: "))
	}
	t.Skip(reason)
	return ""
}

// artifactDir is where screenshots go: $CNITRACE_ARTIFACTS, created if
// need be, else a temporary directory of t.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CNITRACE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("create the artifact directory: %v", err)
	}
	return dir
}

// chromiumResult is what one run of Chromium saw of a page.
type chromiumResult struct {
	dom          []byte   // the DOM after loading, serialised (--dump-dom)
	pageRequests []string // URLs the page asked the network stack for
	console      []string // the page's console messages
}

// runChromium loads the page in headless Chromium in a new network
// namespace, with a fresh profile, and saves a screenshot to shot unless it
// is empty. The run is bounded by chromiumTimeout; Chromium's whole
// process group is killed when it ends, whichever way.
func runChromium(t *testing.T, bin, page, shot string) chromiumResult {
	t.Helper()
	home := t.TempDir() // profile, HOME and caches: nothing of the machine's
	netlog := filepath.Join(home, "net.json")
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
		"--disable-extensions", "--disable-sync", "--user-data-dir=" + filepath.Join(home, "profile"),
		"--enable-logging=stderr", "--log-net-log=" + netlog, "--dump-dom", "--window-size=1200,2000", "--hide-scrollbars"}
	if shot != "" {
		args = append(args, "--screenshot="+shot)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+page)...)
	inNewNetNS(cmd)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home)
	// Files, not pipes: Chromium's helpers may keep their copies open
	// after it exits, and Wait would wait for them.
	stdout, stderr := tempFile(t, home, "dom.html"), tempFile(t, home, "stderr.txt")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium in a new netns: %v", err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }) // whatever it left behind
	err := cmd.Wait()
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	took := time.Since(began)
	dom, log := readBack(t, stdout), readBack(t, stderr)
	switch {
	case ctx.Err() != nil:
		t.Fatalf("chromium did not finish loading %s within %v:\n%s", page, chromiumTimeout, log)
	case err != nil:
		t.Fatalf("run chromium on %s: %v:\n%s", page, err, log)
	}
	t.Logf("chromium loaded %s in %v", filepath.Base(page), took.Round(time.Millisecond))
	reqs, err := pageRequests(netlog)
	if err != nil {
		t.Fatal(err)
	}
	return chromiumResult{dom: dom, pageRequests: reqs, console: consoleLines(log)}
}

// inNewNetNS makes cmd start in a new network namespace of its own, empty
// but for a loopback that is down, and in a process group of its own, so
// that it can be killed with all its helpers. The test's own netns is
// never entered or changed.
func inNewNetNS(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Setpgid: true}
	return cmd
}

func tempFile(t *testing.T, dir, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readBack returns what was written to f.
func readBack(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pageRequests reads a net log (--log-net-log) and returns the URLs of
// the URL requests the page made: every request but those Chromium makes
// on its own (its component updater, which --disable-background-networking
// does not stop), which have no initiator ("not an origin") and no site.
// A file:// page's requests have the page's opaque origin as initiator
// ("null") and file:// as their site.
func pageRequests(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read chromium's net log: %w", err)
	}
	var log struct {
		Constants struct {
			EventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int            `json:"type"`
			Params map[string]any `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &log); err != nil {
		return nil, fmt.Errorf("decode chromium's net log %s: %w", file, err)
	}
	start, ok := log.Constants.EventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		return nil, fmt.Errorf("chromium's net log %s names no URL_REQUEST_START_JOB events", file)
	}
	var urls []string
	for _, e := range log.Events {
		url, _ := e.Params["url"].(string)
		if e.Type != start || url == "" {
			continue
		}
		initiator, _ := e.Params["initiator"].(string)
		site, _ := e.Params["site_for_cookies"].(string)
		if initiator == "not an origin" && !strings.Contains(site, "file://") {
			continue // Chromium's own
		}
		urls = append(urls, url)
	}
	return urls, nil
}

// consoleLines returns the console messages in Chromium's log
// (--enable-logging=stderr): "...:INFO:CONSOLE:0] "message", source: ...",
// but for the browser's own: its interventions, and anything its own UI
// pages (source: chrome://...) log. On a loaded machine Chromium says
// "[Intervention] Slow network is detected ... Fallback font will be used"
// about the system fonts it is slow to load, and its own components say
// the same without the prefix (source:
// chrome://resources/cr_components/...; a CI run at load ~2 failed so):
// no doing of the page's (it has no web font) and no request.
func consoleLines(stderr []byte) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, ":CONSOLE") && !strings.Contains(l, `"[Intervention]`) && !strings.Contains(l, "source: chrome://") {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkPNG checks that the screenshot was written, as a PNG.
func checkPNG(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read the screenshot: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("got a screenshot %s that is not a PNG", file)
	}
}

func containsAll(got []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// writeDocScreenshot writes the screenshot shot to screenshotDoc in 256
// colours (Plan 9's palette, no dithering: the page is flat colours and
// text), a third of the size of Chromium's own PNG.
func writeDocScreenshot(t *testing.T, shot string) {
	t.Helper()
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode the screenshot: %v", err)
	}
	small := image.NewPaletted(img.Bounds(), palette.Plan9)
	draw.Draw(small, small.Bounds(), img, image.Point{}, draw.Src)
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, small); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshotDoc, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", screenshotDoc, b.Len())
}

// TestConsoleLines: the page's own console messages are kept; the
// browser's interventions and its own UI pages' messages are not.
func TestConsoleLines(t *testing.T) {
	log := []byte(`[1:1:1202/062329.1:INFO:CONSOLE:0] "Refused to load the image 'http://192.0.2.1/x.png' because it violates the following Content Security Policy directive", source: file:///tmp/control.html (0)
[1:1:1202/062329.2:INFO:CONSOLE:574] "Slow network is detected. See https://www.chromestatus.com/feature/5636954674692096 for more details. Fallback font will be used while loading: chrome://resources/roboto/roboto-regular.woff2", source: chrome://resources/cr_components/composebox/composebox_input.js (574)
[1:1:1202/062329.3:INFO:CONSOLE:0] "[Intervention] Slow network is detected.", source: file:///tmp/report.html (0)
[1:1:1202/062329.4:INFO:gpu_init.cc(1)] not a console line`)
	got := consoleLines(log)
	if len(got) != 1 || !strings.Contains(got[0], "Content Security Policy") {
		t.Errorf("got %q, want only the page's CSP message", got)
	}
}
