package admin

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"unicode/utf8"

	"hookd"
	"hookd/internal/httpserver"
)

// routeAct registers the operator's actions on one event or destination.
func (a *API) routeAct() {
	a.handle("POST /api/v1/events/{id}/replay", a.replayEvent)
	a.handle("POST /api/v1/destinations/{name}/test", a.testDestination)
}

type replayEventRequest struct {
	Destinations []string `json:"destinations"`
}

// replayEvent sends one event again to the destinations named: 202 with
// their deliveries, queued.
func (a *API) replayEvent(w http.ResponseWriter, r *http.Request) error {
	b, err := readDefinition(w, r)
	if err != nil {
		return err
	}
	var req replayEventRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return hookd.Errorf(hookd.EInvalid, "invalid replay: %v (keys: destinations)", err)
	}
	ds, err := a.eng.ReplayEvent(r.Context(), r.PathValue("id"), req.Destinations)
	if err != nil {
		return err
	}
	out := make([]*DeliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = NewDeliveryJSON(d)
	}
	httpserver.WriteJSON(w, http.StatusAccepted, dataJSON[*DeliveryJSON]{Data: out})
	return nil
}

// TestSource is the source of a test event.
const TestSource = "hookd-test"

// TestType is a test event's type unless the request names one.
const TestType = "hookd.test"

type testRequest struct {
	// Type is the event's type (TestType when empty).
	Type string `json:"type"`
	// Payload, any JSON value, is sent as the body, application/json.
	Payload json.RawMessage `json:"payload"`
	// Body is sent as it is, with ContentType (text/plain when empty);
	// not with Payload.
	Body        *string `json:"body"`
	ContentType string  `json:"content_type"`
}

// defaultTestPayload is the sample payload of a test event.
const defaultTestPayload = `{"type":"hookd.test","data":{"message":"a test event sent by hookd"}}`

// testDestination makes one attempt at delivering a test event (the
// request's sample payload) to a destination and answers with its outcome;
// nothing is stored, nothing is retried.
func (a *API) testDestination(w http.ResponseWriter, r *http.Request) error {
	var req testRequest
	b, err := readDefinition(w, r)
	switch {
	case err == nil:
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return hookd.Errorf(hookd.EInvalid, "invalid test event: %v (keys: type, payload, body, content_type)", err)
		}
	case r.ContentLength == 0:
		// No body: the sample payload.
	default:
		return err
	}
	if req.Body != nil && req.Payload != nil {
		return hookd.Errorf(hookd.EInvalid, "payload and body: give one of them")
	}
	if len(req.Type) > 256 || !utf8.ValidString(req.Type) {
		return hookd.Errorf(hookd.EInvalid, "type: at most 256 bytes of UTF-8")
	}
	if req.ContentType != "" {
		if req.Body == nil {
			return hookd.Errorf(hookd.EInvalid, "content_type: only with body")
		}
		if _, _, err := mime.ParseMediaType(req.ContentType); err != nil || len(req.ContentType) > 256 {
			return hookd.Errorf(hookd.EInvalid, "content_type: not a media type (such as text/plain)")
		}
	}
	ev := &hookd.Event{Source: TestSource, Type: req.Type, ContentType: "application/json", Body: []byte(defaultTestPayload)}
	if ev.Type == "" {
		ev.Type = TestType
	}
	switch {
	case req.Body != nil:
		ev.Body, ev.ContentType = []byte(*req.Body), req.ContentType
		if ev.ContentType == "" {
			ev.ContentType = "text/plain; charset=utf-8"
		}
	case req.Payload != nil:
		ev.Body = req.Payload
	}
	res, err := a.eng.DestinationTest(r.Context(), r.PathValue("name"), ev)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
	return nil
}
