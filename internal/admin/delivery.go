package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"hookd"
	"hookd/internal/engine"
	"hookd/internal/httpserver"
	"hookd/internal/jsonlimit"
	"hookd/internal/store"
)

// maxDefinition bounds a destination's or subscription's JSON body.
const maxDefinition = 1 << 20

// routeDelivery registers the delivery routes; an API without an engine
// (tests of the receiving side) has none.
func (a *API) routeDelivery() {
	if a.eng == nil {
		return
	}
	a.handle("GET /api/v1/sources", listPaged(a.eng.Sources, sourceKey))
	a.handle("POST /api/v1/sources", putOne("", true, a.eng.SourcePut))
	a.handle("GET /api/v1/sources/{name}", a.getSource)
	a.handle("PUT /api/v1/sources/{name}", putOne("name", false, a.eng.SourcePut))
	a.handle("DELETE /api/v1/sources/{name}", deleteOne("name", a.eng.SourceDelete))
	a.handle("GET /api/v1/destinations", listPagedCtx(a.eng.DestinationsCounted, destinationKey))
	a.handle("POST /api/v1/destinations", putOne("", true, a.eng.DestinationPut))
	a.handle("GET /api/v1/destinations/{name}", getOneCtx("name", a.eng.DestinationCounted))
	a.handle("PUT /api/v1/destinations/{name}", putOne("name", false, a.eng.DestinationPut))
	a.handle("DELETE /api/v1/destinations/{name}", deleteOne("name", a.eng.DestinationDelete))
	a.handle("POST /api/v1/destinations/{name}/enable", a.enableDestination)
	a.handle("POST /api/v1/destinations/{name}/disable", a.disableDestination)
	subPut := func(ctx context.Context, id string, spec []byte, _ bool) (engine.SubscriptionView, error) {
		return a.eng.SubscriptionPut(ctx, id, spec)
	}
	a.handle("GET /api/v1/subscriptions", listPaged(a.eng.Subscriptions, subscriptionKey))
	a.handle("POST /api/v1/subscriptions", putOne("", true, subPut))
	a.handle("GET /api/v1/subscriptions/{id}", getOne("id", a.eng.Subscription))
	a.handle("PUT /api/v1/subscriptions/{id}", putOne("id", false, subPut))
	a.handle("DELETE /api/v1/subscriptions/{id}", deleteOne("id", a.eng.SubscriptionDelete))
	a.handle("GET /api/v1/deliveries", a.listDeliveries)
	a.handle("GET /api/v1/deliveries/{id}", a.getDelivery)
	a.handle("POST /api/v1/deliveries/{id}/retry", a.retryDelivery)
	a.handle("POST /api/v1/deliveries/{id}/cancel", a.cancelDelivery)
	a.handle("POST /api/v1/replays", a.startReplay)
	a.handle("GET /api/v1/replays/{id}", a.getReplay)
	a.routeAct()
}

// readDefinition reads a JSON request body: at most maxDefinition bytes,
// nested at most jsonlimit.DefaultDepth levels (checked before any parser
// reads it), valid JSON.
func readDefinition(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDefinition))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, hookd.Errorf(hookd.ETooLarge, "body over %d bytes", maxDefinition)
		}
		return nil, hookd.Errorf(hookd.EInvalid, "read body: %v", err)
	}
	if err := jsonlimit.Check(b, jsonlimit.DefaultDepth); err != nil {
		return nil, hookd.Errorf(hookd.EInvalid, "body: %v", err)
	}
	if !json.Valid(b) {
		return nil, hookd.Errorf(hookd.EInvalid, "body is not valid JSON")
	}
	return b, nil
}

type dataJSON[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// The handlers of the resources the API manages (sources, destinations,
// subscriptions), built from the engine's methods.

// defaultDefinitionPage is the page size of the listings of sources,
// destinations and subscriptions when the request names none.
const defaultDefinitionPage = 100

// listPaged answers one page of the items list returns, in the order of
// their keys (list returns them so): {"data": […], "next_cursor": …},
// with limit (default 100, at most 1000) and cursor (the next_cursor of
// the previous page; it names the last item it held, so a page is right
// whatever was created or deleted meanwhile).
func listPaged[V any](list func() []V, key func(*V) string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		limit, err := intParam(q.Get("limit"), defaultDefinitionPage)
		if err != nil {
			return err
		}
		after, err := decodeKeyCursor(q.Get("cursor"))
		if err != nil {
			return err
		}
		httpserver.WriteJSON(w, http.StatusOK, page(list(), key, after, limit))
		return nil
	}
}

// listPagedCtx is listPaged for a list that reads the store.
func listPagedCtx[V any](list func(context.Context) ([]V, error), key func(*V) string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		items, err := list(r.Context())
		if err != nil {
			return err
		}
		return listPaged(func() []V { return items }, key)(w, r)
	}
}

// page returns the items after the key after, at most limit of them;
// items are in the order of their keys.
func page[V any](items []V, key func(*V) string, after string, limit int) dataJSON[V] {
	i := 0
	if after != "" {
		i = sort.Search(len(items), func(i int) bool { return key(&items[i]) > after })
	}
	out := dataJSON[V]{Data: items[i:min(len(items), i+limit)]}
	if i+limit < len(items) {
		c := base64.RawURLEncoding.EncodeToString([]byte(key(&out.Data[len(out.Data)-1])))
		out.NextCursor = &c
	}
	if out.Data == nil {
		out.Data = []V{}
	}
	return out
}

func decodeKeyCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return "", hookd.Errorf(hookd.EInvalid, "invalid cursor %q (use the next_cursor of the previous page)", c)
	}
	return string(b), nil
}

func sourceKey(s *engine.SourceView) string           { return s.Name }
func destinationKey(d *engine.DestinationView) string { return d.Name }

// subscriptionKey orders subscriptions as they are listed: oldest first,
// then by id.
func subscriptionKey(s *engine.SubscriptionView) string {
	return fmt.Sprintf("%020d/%s", s.CreatedAt.UnixNano(), s.ID)
}

// getOne answers the item named by the path value key.
func getOne[V any](key string, get func(string) (V, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := get(r.PathValue(key))
		if err != nil {
			return err
		}
		httpserver.WriteJSON(w, http.StatusOK, v)
		return nil
	}
}

// getOneCtx is getOne for a get that reads the store.
func getOneCtx[V any](key string, get func(context.Context, string) (V, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		return getOne(key, func(name string) (V, error) { return get(r.Context(), name) })(w, r)
	}
}

// putOne reads a JSON definition and creates (201) or replaces (200) the
// item; key names the path value that names it ("" when creating).
func putOne[V any](key string, create bool, put func(context.Context, string, []byte, bool) (V, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		b, err := readDefinition(w, r)
		if err != nil {
			return err
		}
		name := ""
		if key != "" {
			name = r.PathValue(key)
		}
		v, err := put(r.Context(), name, b, create)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if create {
			status = http.StatusCreated
		}
		httpserver.WriteJSON(w, status, v)
		return nil
	}
}

// deleteOne deletes the item named by the path value key: 204.
func deleteOne(key string, del func(context.Context, string) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := del(r.Context(), r.PathValue(key)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (a *API) enableDestination(w http.ResponseWriter, r *http.Request) error {
	v, err := a.eng.DestinationEnable(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, v)
	return nil
}

// disableDestination disables a destination on an operator's request; an
// optional body {"reason": "…"} says why (at most 256 bytes of it kept).
func (a *API) disableDestination(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		b, err := readDefinition(w, r)
		if err != nil {
			return err
		}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				return hookd.Errorf(hookd.EInvalid, "body: want {\"reason\": \"…\"}")
			}
		}
	}
	reason := body.Reason
	if len(reason) > 256 {
		reason = strings.ToValidUTF8(reason[:256], "")
	}
	v, err := a.eng.DestinationDisable(r.Context(), r.PathValue("name"), reason)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, v)
	return nil
}

// DeliveryJSON is the API's shape of a delivery.
type DeliveryJSON struct {
	ID             string        `json:"id"`
	EventID        string        `json:"event_id"`
	Destination    string        `json:"destination"`
	SubscriptionID string        `json:"subscription_id,omitempty"`
	Status         string        `json:"status"`
	AttemptCount   int           `json:"attempt_count"`
	NextAttemptAt  *time.Time    `json:"next_attempt_at"`
	LastAttemptAt  *time.Time    `json:"last_attempt_at"`
	LastStatusCode int           `json:"last_status_code,omitempty"`
	LastError      string        `json:"last_error,omitempty"`
	Reason         string        `json:"reason,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	Attempts       []AttemptJSON `json:"attempts,omitempty"`
}

// AttemptJSON is one attempt of a delivery (SPEC §4).
type AttemptJSON struct {
	Number          int       `json:"number"`
	StartedAt       time.Time `json:"started_at"`
	DurationMS      float64   `json:"duration_ms"`
	StatusCode      int       `json:"status_code,omitempty"`
	Error           string    `json:"error,omitempty"`
	ResponseExcerpt string    `json:"response_excerpt,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// NewDeliveryJSON renders a delivery (with its attempts when loaded).
func NewDeliveryJSON(d *store.Delivery) *DeliveryJSON {
	j := &DeliveryJSON{
		ID: d.ID, EventID: d.EventID, Destination: d.Destination, SubscriptionID: d.SubscriptionID, Status: d.Status,
		AttemptCount: d.Attempts, LastAttemptAt: timePtr(d.LastAttemptAt), LastStatusCode: d.LastStatusCode,
		LastError: d.LastError, Reason: d.Reason, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
	if d.Status == store.StatusPending || d.Status == store.StatusRetrying {
		j.NextAttemptAt = timePtr(d.NextAttemptAt)
	}
	for _, at := range d.AttemptLog {
		aj := AttemptJSON{Number: at.Number, StartedAt: at.StartedAt, DurationMS: float64(at.Duration.Microseconds()) / 1000,
			StatusCode: at.StatusCode, Error: at.Error}
		if utf8.Valid(at.ResponseExcerpt) {
			aj.ResponseExcerpt = string(at.ResponseExcerpt)
		} else {
			aj.ResponseExcerpt = "base64:" + base64.StdEncoding.EncodeToString(at.ResponseExcerpt)
		}
		j.Attempts = append(j.Attempts, aj)
	}
	if d.AttemptLog != nil && j.Attempts == nil {
		j.Attempts = []AttemptJSON{}
	}
	return j
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := &store.DeliveryListParams{Status: q.Get("status"), Destination: q.Get("destination"), Source: q.Get("source"),
		EventType: q.Get("type"), EventID: q.Get("event_id"), After: q.Get("cursor")}
	switch p.Status {
	case "", store.StatusPending, store.StatusDelivering, store.StatusSucceeded, store.StatusRetrying, store.StatusFailed, store.StatusCancelled:
	default:
		return hookd.Errorf(hookd.EInvalid, "invalid status %q (want pending, delivering, succeeded, retrying, failed or cancelled)", p.Status)
	}
	var err error
	if p.Limit, err = intParam(q.Get("limit"), 50); err != nil {
		return err
	}
	if p.Since, err = timeParam("since", q.Get("since")); err != nil {
		return err
	}
	if p.Until, err = timeParam("until", q.Get("until")); err != nil {
		return err
	}
	ds, next, err := a.eng.DeliveryList(r.Context(), p)
	if err != nil {
		return err
	}
	out := dataJSON[*DeliveryJSON]{Data: make([]*DeliveryJSON, 0, len(ds))}
	for _, d := range ds {
		out.Data = append(out.Data, NewDeliveryJSON(d))
	}
	if next != "" {
		out.NextCursor = &next
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := a.eng.DeliveryGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, NewDeliveryJSON(d))
	return nil
}

func (a *API) retryDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := a.eng.Retry(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusAccepted, NewDeliveryJSON(d))
	return nil
}

func (a *API) cancelDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := a.eng.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, NewDeliveryJSON(d))
	return nil
}

type replayRequest struct {
	Source      string `json:"source"`
	Type        string `json:"type"`
	Since       string `json:"since"`
	Until       string `json:"until"`
	Status      string `json:"status"`
	Destination string `json:"destination"`
}

func (a *API) startReplay(w http.ResponseWriter, r *http.Request) error {
	b, err := readDefinition(w, r)
	if err != nil {
		return err
	}
	var req replayRequest
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return hookd.Errorf(hookd.EInvalid, "invalid replay filter: %v (keys: source, type, since, until, status, destination)", err)
	}
	f := engine.ReplayFilter{Source: req.Source, Type: req.Type, Status: req.Status, Destination: req.Destination}
	if f.Since, err = timeParam("since", req.Since); err != nil {
		return err
	}
	if f.Until, err = timeParam("until", req.Until); err != nil {
		return err
	}
	j, err := a.eng.ReplayStart(f)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/replays/"+j.ID)
	httpserver.WriteJSON(w, http.StatusAccepted, j)
	return nil
}

func (a *API) getReplay(w http.ResponseWriter, r *http.Request) error {
	j, err := a.eng.Replay(r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, j)
	return nil
}

// eventDeliveries renders an event's deliveries with their attempts
// (those the engine has not written yet too).
func (a *API) eventDeliveries(r *http.Request, eventID string) ([]*DeliveryJSON, error) {
	list := a.st.DeliveryListByEvent
	if a.eng != nil {
		list = a.eng.DeliveryListByEvent
	}
	ds, err := list(r.Context(), eventID)
	if err != nil {
		return nil, err
	}
	out := make([]*DeliveryJSON, 0, len(ds))
	for _, d := range ds {
		j := NewDeliveryJSON(d)
		if j.Attempts == nil {
			j.Attempts = []AttemptJSON{}
		}
		out = append(out, j)
	}
	return out, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
