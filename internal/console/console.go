// Package console serves hookd's web console: a small single-page app
// (vanilla JavaScript, no build step) under /console/ that talks to the
// admin API (/api/v1) on the same origin with a bearer token the operator
// pastes in. It shows events (filtered, with a live tail), an event's
// delivery timeline, the failed queue with retry and replay, destination
// and source health and stats charts, and it replays events and sends
// test events (docs/CONSOLE.md).
//
// Every asset is embedded in the binary; nothing is loaded from elsewhere.
// The handler serves only those assets (GET and HEAD), each with a strict
// Content-Security-Policy that forbids inline scripts and styles, so
// attacker-controlled webhook content rendered by the console cannot run.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console answer.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

//go:embed static
var staticFS embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	contentType string
	etag        string
	data        []byte
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// assets maps a file name relative to Prefix ("index.html", "app.js")
// to its content. It is built once from the embedded files; only top-level
// files with a known type are served.
var assets = loadAssets()

func loadAssets() map[string]*asset {
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic("console: reading embedded assets: " + err.Error())
	}
	m := make(map[string]*asset, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		ct, ok := contentTypes[path.Ext(e.Name())]
		if !ok {
			continue
		}
		data, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic("console: reading embedded asset: " + err.Error())
		}
		sum := sha256.Sum256(data)
		m[e.Name()] = &asset{name: e.Name(), contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, data: data}
	}
	if m["index.html"] == nil {
		panic("console: embedded index.html missing")
	}
	return m
}

// Handler returns the console's handler, to be mounted at Prefix:
//
//	mux.Handle("/console/", console.Handler())
//
// It serves the embedded assets for GET and HEAD (index.html for
// "/console/"), redirects "/console" to "/console/", answers 405 for other
// methods and 404 for unknown paths. Every answer carries the console's
// security headers and Cache-Control: no-cache (assets are revalidated
// with their ETag).
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	p := r.URL.Path
	if p == strings.TrimSuffix(Prefix, "/") {
		target := Prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		h.Set("Location", target)
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		plain(w, http.StatusNotFound, "not found")
		return
	}
	if name == "" {
		name = "index.html"
	}
	a := assets[name]
	if a == nil {
		plain(w, http.StatusNotFound, "not found")
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	// ServeContent handles HEAD, conditional requests (If-None-Match) and
	// ranges; the zero modification time leaves Last-Modified out.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}
