// Package admin serves the admin API under /api/v1: the event log, request
// lookup, the per-source replayable FIFO stream, and the OpenAPI document.
// Every route takes a bearer admin token; every error is rendered by the one
// renderer in package httpserver.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/engine"
	"hookd/internal/httpserver"
	"hookd/internal/store"
	"hookd/internal/verify"
)

//go:embed openapi.json
var openAPI []byte

// API is the admin API handler.
type API struct {
	st      store.Store
	errs    *httpserver.Errors
	log     *slog.Logger
	tokens  [][32]byte
	stored  *storedToken
	sources []config.Source
	eng     *engine.Engine
	mux     *http.ServeMux
	// handshakes keeps each source's last handshake; nil shows none.
	handshakes *HandshakeLog
	// backup serves POST /api/v1/backup; nil: no such route.
	backup BackupFunc
	reload reloadFunc
	// now, sessionTTL and signInLimit serve the console's sessions
	// (session.go).
	now         func() time.Time
	sessionTTL  time.Duration
	signInLimit *verify.FailureLimiter
}

// Options configures the API.
type Options struct {
	Store  store.Store
	Errors *httpserver.Errors
	Log    *slog.Logger
	Tokens []string
	// StoredToken, when set, reads the hash of the generated admin token
	// from the store (setting TokenSetting, see HashToken); the API reads
	// it again at most once a second, so that a reset takes effect
	// without a restart. Used when Tokens is empty.
	StoredToken func(ctx context.Context) (string, error)
	Sources     []config.Source
	// Engine serves destinations, subscriptions, retries and replays.
	Engine *engine.Engine
	// Handshakes, when set, gives GET /api/v1/sources/{name} the
	// source's last_handshake and last_refused_handshake.
	Handshakes *HandshakeLog
	// Backup, when set, serves POST /api/v1/backup (backup.go).
	Backup BackupFunc
	// Reload, when set, serves POST /api/v1/reload: the configuration
	// file is read again (reload.go).
	Reload reloadFunc
	// SessionTTL is how long a console session lasts from its sign-in
	// (admin.session_ttl); zero is config.DefaultSessionTTL.
	SessionTTL time.Duration
	// Now is the clock of sessions and the sign-in limit; nil: time.Now.
	Now func() time.Time
}

// New returns the admin API; mount it at /api/v1/.
func New(o Options) *API {
	a := &API{st: o.Store, errs: o.Errors, log: o.Log, sources: o.Sources, eng: o.Engine, mux: http.NewServeMux(), handshakes: o.Handshakes, backup: o.Backup}
	for _, t := range o.Tokens {
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	if o.StoredToken != nil {
		a.stored = &storedToken{read: o.StoredToken, now: time.Now}
	}
	a.now, a.sessionTTL = o.Now, o.SessionTTL
	if a.now == nil {
		a.now = time.Now
	}
	if a.sessionTTL <= 0 {
		a.sessionTTL = config.DefaultSessionTTL
	}
	// Failed sign-ins are limited per address like the token endpoint's
	// failed client authentications, with its default limits.
	a.signInLimit = verify.NewFailureLimiter(config.DefaultIssuerFailures, config.DefaultIssuerFailureBurst, config.DefaultIssuerMaxAddresses, a.now)
	a.routeSession()
	a.handle("GET /api/v1/events", a.listEvents)
	a.handle("GET /api/v1/events/{id}", a.getEvent)
	a.handle("GET /api/v1/events/{id}/body", a.getEventBody)
	a.handle("GET /api/v1/requests/{id}", a.getRequest)
	if a.eng == nil {
		a.handle("GET /api/v1/sources", a.listSources)
	}
	a.handle("GET /api/v1/sources/{name}/events", a.sourceStream)
	a.handle("GET /api/v1/stats", a.getStats)
	if o.Reload != nil {
		a.reload = o.Reload
		a.handle("POST /api/v1/reload", a.reloadConfig)
	}
	a.routeDelivery()
	a.routeTransform()
	if a.backup != nil {
		a.handle("POST /api/v1/backup", a.postBackup)
	}
	a.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	a.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		a.errs.Write(w, r, hookd.Errorf(hookd.ENotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return a
}

func (a *API) handle(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := a.authorize(r); err != nil {
			if hookd.ErrorCode(err) == hookd.EUnauthorized {
				challenge := `Bearer realm="hookd-admin"`
				if scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(tok) != "" {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
			}
			a.errs.Write(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			a.errs.Write(w, r, mapStoreErr(err))
		}
	})
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// authorize checks the bearer token against every admin token in constant
// time (comparing hashes, so lengths leak nothing either). A request
// without an Authorization header but with a session cookie is
// authenticated by its session (session.go).
func (a *API) authorize(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	if auth == "" && hasSessionCookie(r) {
		return a.authorizeSession(r)
	}
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return hookd.Errorf(hookd.EUnauthorized, "an admin token is required: Authorization: Bearer TOKEN")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for _, t := range a.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if a.stored != nil {
		h, ok, err := a.stored.get(r.Context())
		if err != nil && a.log != nil {
			a.log.Warn("read the admin token's hash from the store; the last one read stays in force", "err", err)
		}
		if ok {
			match |= subtle.ConstantTimeCompare(sum[:], h[:])
		}
	}
	if match != 1 {
		return hookd.Errorf(hookd.EUnauthorized, "invalid admin token")
	}
	return nil
}

func mapStoreErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &hookd.Error{Code: hookd.ENotFound, Message: "not found", Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &hookd.Error{Code: hookd.EUnavailable, Message: "storage too slow", Err: err}
	}
	return err
}

// EventJSON is the API's shape of an event.
type EventJSON struct {
	ID          string     `json:"id"`
	Source      string     `json:"source"`
	ExternalID  *string    `json:"external_id"`
	Type        *string    `json:"type"`
	Key         *string    `json:"key"`
	OccurredAt  *time.Time `json:"occurred_at"`
	ReceivedAt  time.Time  `json:"received_at"`
	RequestID   string     `json:"request_id"`
	Stale       bool       `json:"stale"`
	ContentType string     `json:"content_type"`
	// Headers is omitted only from listings asked for with body=false.
	Headers    *map[string][]string `json:"headers,omitempty"`
	Body       *string              `json:"body,omitempty"`
	BodyBase64 *string              `json:"body_base64,omitempty"`
	Deliveries []*DeliveryJSON      `json:"deliveries"`
	// Cursor is the event's position in the log, for after=/cursor=.
	Cursor string `json:"cursor"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// NewEventJSON renders an event; the body only when it was loaded.
func NewEventJSON(e *hookd.Event) *EventJSON {
	j := &EventJSON{
		ID: e.ID, Source: e.Source, ExternalID: strPtr(e.ExternalID), Type: strPtr(e.Type), Key: strPtr(e.Key),
		ReceivedAt: e.ReceivedAt, RequestID: e.RequestID, Stale: e.Stale, ContentType: e.ContentType,
		Deliveries: []*DeliveryJSON{}, Cursor: store.EncodeCursor(e.Seq),
	}
	if !e.OccurredAt.IsZero() {
		t := e.OccurredAt
		j.OccurredAt = &t
	}
	if e.Body != nil {
		h := e.Headers
		if h == nil {
			h = map[string][]string{}
		}
		j.Headers = &h
		b64 := base64.StdEncoding.EncodeToString(e.Body)
		j.BodyBase64 = &b64
		if utf8.Valid(e.Body) {
			s := string(e.Body)
			j.Body = &s
		}
	}
	return j
}

func (a *API) listParams(r *http.Request) (*store.EventListParams, error) {
	q := r.URL.Query()
	p := &store.EventListParams{Source: q.Get("source"), Type: q.Get("type"), After: q.Get("cursor"), Order: store.OrderDesc, WithBody: true,
		DeliveryDestination: q.Get("destination")}
	switch s := q.Get("status"); s {
	case "", store.StatusPending, store.StatusDelivering, store.StatusSucceeded, store.StatusRetrying, store.StatusFailed, store.StatusCancelled:
		p.DeliveryStatus = s
	default:
		return nil, hookd.Errorf(hookd.EInvalid, "invalid status %q (want pending, delivering, succeeded, retrying, failed or cancelled: events with a delivery in that status)", s)
	}
	switch o := q.Get("order"); o {
	case "", store.OrderDesc:
	case store.OrderAsc:
		p.Order = store.OrderAsc
	default:
		return nil, hookd.Errorf(hookd.EInvalid, "invalid order %q (want asc or desc)", o)
	}
	var err error
	if p.Limit, err = intParam(q.Get("limit"), 50); err != nil {
		return nil, err
	}
	if p.Since, err = timeParam("since", q.Get("since")); err != nil {
		return nil, err
	}
	if p.Until, err = timeParam("until", q.Get("until")); err != nil {
		return nil, err
	}
	if b := q.Get("body"); b == "false" || b == "0" {
		p.WithBody = false
	} else {
		p.MaxBodyBytes = PageBodyBytes
	}
	return p, nil
}

func intParam(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > store.MaxListLimit {
		return 0, hookd.Errorf(hookd.EInvalid, "invalid limit %q (want 1 to %d)", s, store.MaxListLimit)
	}
	return n, nil
}

func timeParam(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, hookd.Errorf(hookd.EInvalid, "invalid %s %q (want RFC 3339, such as 2026-01-02T15:04:05Z)", name, s)
	}
	return t, nil
}

func (a *API) listEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := a.listParams(r)
	if err != nil {
		return err
	}
	var (
		events []*hookd.Event
		next   string
	)
	if text, ok := r.URL.Query()["q"]; ok {
		// A bounded scan of bodies: the page may hold fewer matches
		// than asked, none even, with a cursor to go on scanning.
		withBody := p.WithBody
		events, next, err = store.EventSearch(r.Context(), a.st, p, text[0])
		if !withBody {
			for _, e := range events {
				e.Body, e.Headers = nil, nil
			}
		}
	} else {
		events, next, err = a.st.EventList(r.Context(), p)
	}
	if err != nil {
		return err
	}
	var nextp *string
	if next != "" {
		nextp = &next
	}
	writeEvents(w, events, nextp)
	return nil
}

// PageBodyBytes bounds the bodies of one page of a listing that carries
// them (the event list, a source's stream): the page ends before the event
// whose raw body would take it past this, and next_cursor continues it,
// whatever limit asks for. A page holds at least one event, whatever its
// size. An answer carries each body twice (as text, escaped, and as
// base64), so a page costs up to about eight times this.
const PageBodyBytes = 4 << 20

// writeEvents answers {"data": [events], "next_cursor": next}, the same
// bytes json.Marshal would make of it, encoding one event at a time
// straight to w: the whole answer is never in memory, and each event's
// body is let go once it is written.
func writeEvents(w http.ResponseWriter, events []*hookd.Event, next *string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	sep := `{"data":[`
	for i, e := range events {
		b, err := json.Marshal(NewEventJSON(e))
		if err != nil {
			// Nothing in an event fails to encode; were it to, the
			// answer could only be cut short.
			return
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return
		}
		if _, err := w.Write(b); err != nil {
			// The client went away: nothing more can reach it.
			return
		}
		sep, events[i] = ",", nil
	}
	if len(events) == 0 {
		io.WriteString(w, sep)
	}
	tail := `],"next_cursor":null}` + "\n"
	if next != nil {
		c, _ := json.Marshal(*next)
		tail = `],"next_cursor":` + string(c) + "}\n"
	}
	io.WriteString(w, tail)
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request) error {
	e, err := a.st.EventGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	j := NewEventJSON(e)
	if j.Deliveries, err = a.eventDeliveries(r, e.ID); err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, j)
	return nil
}

func (a *API) getEventBody(w http.ResponseWriter, r *http.Request) error {
	e, err := a.st.EventGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ct := e.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox")
	w.Write(e.Body)
	return nil
}

type requestJSON struct {
	RequestID  string     `json:"request_id"`
	EventID    string     `json:"event_id"`
	Duplicate  bool       `json:"duplicate"`
	ReceivedAt time.Time  `json:"received_at"`
	Event      *EventJSON `json:"event"`
}

func (a *API) getRequest(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !hookd.ValidID(id, hookd.RequestIDPrefix) {
		return hookd.Errorf(hookd.ENotFound, "no request %q", id)
	}
	req, err := a.st.RequestGet(r.Context(), id)
	if err != nil {
		return err
	}
	e, err := a.st.EventGet(r.Context(), req.EventID)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, requestJSON{RequestID: req.ID, EventID: req.EventID, Duplicate: req.Duplicate, ReceivedAt: req.ReceivedAt, Event: NewEventJSON(e)})
	return nil
}

type sourceJSON struct {
	Name         string   `json:"name"`
	Path         string   `json:"path"`
	Verify       []string `json:"verify"`
	DedupeWindow string   `json:"dedupe_window"`
	MaxBody      int64    `json:"max_body"`
}

func (a *API) listSources(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), defaultDefinitionPage)
	if err != nil {
		return err
	}
	after, err := decodeKeyCursor(q.Get("cursor"))
	if err != nil {
		return err
	}
	all := make([]sourceJSON, 0, len(a.sources))
	for _, s := range a.sources {
		j := sourceJSON{Name: s.Name, Path: "/in/" + s.Name, Verify: []string{}, MaxBody: int64(s.MaxBody)}
		for _, v := range s.Verify {
			j.Verify = append(j.Verify, v.Type)
		}
		if s.DedupeWindow != nil {
			j.DedupeWindow = s.DedupeWindow.D().String()
		}
		all = append(all, j)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	httpserver.WriteJSON(w, http.StatusOK, page(all, func(s *sourceJSON) string { return s.Name }, after, limit))
	return nil
}

// sourceStream is the replayable FIFO stream of one source: events in the
// order they were committed, after a cursor. next_cursor is always set (to
// the given cursor when nothing new came), so a consumer can poll with it.
func (a *API) sourceStream(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	known := false
	if a.eng != nil {
		_, err := a.eng.Source(name)
		known = err == nil
	} else {
		for _, s := range a.sources {
			known = known || s.Name == name
		}
	}
	if !known {
		return hookd.Errorf(hookd.ENotFound, "unknown source %q", name)
	}
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100)
	if err != nil {
		return err
	}
	after := q.Get("after")
	if _, err := store.DecodeCursor(after); err != nil {
		return err
	}
	events, _, err := a.st.EventList(r.Context(), &store.EventListParams{Source: name, After: after, Order: store.OrderAsc, Limit: limit, WithBody: true, MaxBodyBytes: PageBodyBytes})
	if err != nil {
		return err
	}
	next := after
	if next == "" {
		next = store.EncodeCursor(0)
	}
	if len(events) > 0 {
		next = store.EncodeCursor(events[len(events)-1].Seq)
	}
	writeEvents(w, events, &next)
	return nil
}
