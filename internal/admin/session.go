package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"hookd"
	"hookd/internal/httpserver"
	"hookd/internal/jsonlimit"
	"hookd/internal/store"
	"hookd/internal/verify"
)

// Console sign-in (docs/SECURITY.md): POST /api/v1/session exchanges an
// admin token for a session cookie, DELETE /api/v1/session ends it.
//
// The cookie holds a random session id (256 bits). The store keeps only
// its SHA-256 and an HMAC, keyed by the id, of the digest of the admin
// token that made it; every request authenticated by the cookie reads the
// session from the store (so every replica honours it and a sign-out ends
// it everywhere at once) and checks that its token is still an admin
// token: a token removed from the configuration, or a generated one reset
// with hookd admin-token reset, ends its sessions. A session lasts
// admin.session_ttl from the sign-in; using it does not extend it.
//
// A state-changing request authenticated by the cookie must carry the
// session's CSRF token in X-CSRF-Token (an HMAC of the session id, given by
// POST and GET /api/v1/session), and, when the browser sends them, an
// Origin naming this host and Sec-Fetch-Site: same-origin. Requests with
// an Authorization header are authenticated by it alone, as before.
const (
	// SessionCookie is the name of the session cookie.
	SessionCookie = "hookd_session"
	// CSRFHeader carries the session's CSRF token.
	CSRFHeader = "X-CSRF-Token"
	// sessionIDBytes is the session id's length before base64.
	sessionIDBytes = 32
	// maxSignInBody bounds POST /api/v1/session's body.
	maxSignInBody = 4 << 10
	// csrfLabel is what the CSRF token is the HMAC of.
	csrfLabel = "hookd csrf token v1"
)

// SessionJSON is the answer of POST and GET /api/v1/session.
type SessionJSON struct {
	// CSRFToken goes in X-CSRF-Token on every state-changing request the
	// cookie authenticates.
	CSRFToken string `json:"csrf_token"`
	// ExpiresAt is when the session ends.
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *API) routeSession() {
	a.mux.HandleFunc("POST /api/v1/session", a.wrap(a.signIn))
	a.mux.HandleFunc("GET /api/v1/session", a.wrap(a.getSession))
	a.mux.HandleFunc("DELETE /api/v1/session", a.wrap(a.signOut))
}

// wrap serves a handler that authenticates by itself.
func (a *API) wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := h(w, r); err != nil {
			a.errs.Write(w, r, mapStoreErr(err))
		}
	}
}

// signIn is POST /api/v1/session: an admin token, in Authorization: Bearer
// or as {"token": "…"}, for a session cookie.
func (a *API) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	done, wait, ok := a.signInLimit.Admit(r.RemoteAddr)
	if !ok {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(max(1, math.Ceil(wait.Seconds()))), 10))
		return hookd.Errorf(hookd.ERateLimited, "too many failed sign-ins from this address; try again later")
	}
	failed := true
	defer func() { done(failed) }()
	tok, err := signInToken(w, r)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(tok))
	if !a.isAdminToken(r.Context(), sum) {
		return hookd.Errorf(hookd.EUnauthorized, "invalid admin token")
	}
	failed = false
	var raw [sessionIDBytes]byte
	rand.Read(raw[:])
	sid := base64.RawURLEncoding.EncodeToString(raw[:])
	now := a.now().UTC()
	s := &store.AdminSession{IDHash: sessionIDHash(sid), TokenMAC: tokenMAC(sid, sum), CreatedAt: now, ExpiresAt: now.Add(a.sessionTTL)}
	if err := a.st.AdminSessionInsert(r.Context(), s); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sid, Path: "/", MaxAge: int(a.sessionTTL / time.Second), Expires: s.ExpiresAt,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	httpserver.WriteJSON(w, http.StatusCreated, SessionJSON{CSRFToken: csrfToken(sid), ExpiresAt: s.ExpiresAt})
	return nil
}

// signInToken reads the presented admin token.
func signInToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, _ := strings.Cut(auth, " ")
		if tok = strings.TrimSpace(tok); !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", hookd.Errorf(hookd.EUnauthorized, "an admin token is required: Authorization: Bearer TOKEN or {\"token\": \"TOKEN\"}")
		}
		return tok, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSignInBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", hookd.Errorf(hookd.ETooLarge, "body over %d bytes", maxSignInBody)
		}
		return "", hookd.Errorf(hookd.EInvalid, "read body: %v", err)
	}
	if err := jsonlimit.Check(b, jsonlimit.DefaultDepth); err != nil {
		return "", hookd.Errorf(hookd.EInvalid, "body: %v", err)
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return "", hookd.Errorf(hookd.EInvalid, "body: want {\"token\": \"TOKEN\"}")
	}
	if body.Token = strings.TrimSpace(body.Token); body.Token == "" {
		return "", hookd.Errorf(hookd.EUnauthorized, "an admin token is required: Authorization: Bearer TOKEN or {\"token\": \"TOKEN\"}")
	}
	return body.Token, nil
}

// getSession is GET /api/v1/session: the cookie's session, with its CSRF
// token, for another tab of the console.
func (a *API) getSession(w http.ResponseWriter, r *http.Request) error {
	sid, s, err := a.session(r)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, SessionJSON{CSRFToken: csrfToken(sid), ExpiresAt: s.ExpiresAt})
	return nil
}

// signOut is DELETE /api/v1/session: the session ends on every replica and
// the cookie is cleared. Without a live session it only clears the cookie.
func (a *API) signOut(w http.ResponseWriter, r *http.Request) error {
	sid, _, err := a.session(r)
	var he *hookd.Error
	if err != nil && !(errors.As(err, &he) && he.Code == hookd.EUnauthorized) {
		return err
	}
	if err == nil {
		if err := checkCSRF(r, sid); err != nil {
			return err
		}
		if err := a.st.AdminSessionDelete(r.Context(), sessionIDHash(sid)); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// hasSessionCookie reports whether r carries a session cookie.
func hasSessionCookie(r *http.Request) bool {
	_, err := r.Cookie(SessionCookie)
	return err == nil
}

// session returns the live session of r's cookie; EUnauthorized when there
// is none, it expired, or its admin token is no longer one.
func (a *API) session(r *http.Request) (string, *store.AdminSession, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", nil, hookd.Errorf(hookd.EUnauthorized, "not signed in")
	}
	sid := c.Value
	if raw, err := base64.RawURLEncoding.DecodeString(sid); err != nil || len(raw) != sessionIDBytes {
		return "", nil, hookd.Errorf(hookd.EUnauthorized, "not signed in")
	}
	s, err := a.st.AdminSessionGet(r.Context(), sessionIDHash(sid))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, hookd.Errorf(hookd.EUnauthorized, "the session ended; sign in again")
	}
	if err != nil {
		return "", nil, err
	}
	if !a.now().Before(s.ExpiresAt) {
		return "", nil, hookd.Errorf(hookd.EUnauthorized, "the session expired; sign in again")
	}
	if !a.sessionTokenLive(r.Context(), sid, s) {
		// Its admin token was removed or reset: the session is over for
		// good, so it need not be kept.
		if err := a.st.AdminSessionDelete(r.Context(), s.IDHash); err != nil && a.log != nil {
			a.log.Warn("delete a session whose admin token is gone", "err", err)
		}
		return "", nil, hookd.Errorf(hookd.EUnauthorized, "the admin token that made the session is no longer valid; sign in again")
	}
	return sid, s, nil
}

// authorizeSession authenticates r by its session cookie; a request other
// than GET or HEAD must pass the CSRF checks too.
func (a *API) authorizeSession(r *http.Request) error {
	sid, _, err := a.session(r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	return checkCSRF(r, sid)
}

// checkCSRF refuses (403) a state-changing request made with the cookie
// from another site, or without the session's CSRF token.
func checkCSRF(r *http.Request, sid string) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || !verify.Equal([]byte(got), []byte(csrfToken(sid))) {
		return hookd.Errorf(hookd.EForbidden, "a request signed in by cookie needs the session's CSRF token in %s", CSRFHeader)
	}
	return nil
}

// sameOrigin refuses (403) a request a browser says comes from another
// site: Sec-Fetch-Site other than same-origin, or an Origin whose host is
// not the request's. Clients that send neither (curl) pass.
func sameOrigin(r *http.Request) error {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return hookd.Errorf(hookd.EForbidden, "cross-site request refused (Sec-Fetch-Site: %s)", s)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return hookd.Errorf(hookd.EForbidden, "cross-origin request refused (Origin does not name this host)")
		}
	}
	return nil
}

// isAdminToken reports whether sum is the digest of a current admin token,
// comparing with every one in constant time.
func (a *API) isAdminToken(ctx context.Context, sum [32]byte) bool {
	match := false
	for _, d := range a.tokenDigests(ctx) {
		if verify.Equal(sum[:], d[:]) {
			match = true
		}
	}
	return match
}

// sessionTokenLive reports whether the admin token that made s is still
// one.
func (a *API) sessionTokenLive(ctx context.Context, sid string, s *store.AdminSession) bool {
	match := false
	for _, d := range a.tokenDigests(ctx) {
		if verify.Equal([]byte(tokenMAC(sid, d)), []byte(s.TokenMAC)) {
			match = true
		}
	}
	return match
}

// tokenDigests are the SHA-256 digests of the admin tokens in force: the
// configured ones and the generated one's.
func (a *API) tokenDigests(ctx context.Context) [][32]byte {
	out := append([][32]byte(nil), a.tokens...)
	if a.stored != nil {
		h, ok, err := a.stored.get(ctx)
		if err != nil && a.log != nil {
			a.log.Warn("read the admin token's hash from the store; the last one read stays in force", "err", err)
		}
		if ok {
			out = append(out, h)
		}
	}
	return out
}

// sessionIDHash is what the store keeps of a session id.
func sessionIDHash(sid string) string {
	sum := sha256.Sum256([]byte(sid))
	return hex.EncodeToString(sum[:])
}

// tokenMAC binds a session to the digest of its admin token.
func tokenMAC(sid string, digest [32]byte) string {
	m := hmac.New(sha256.New, []byte(sid))
	m.Write(digest[:])
	return hex.EncodeToString(m.Sum(nil))
}

// csrfToken is the session's CSRF token.
func csrfToken(sid string) string {
	m := hmac.New(sha256.New, []byte(sid))
	m.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
