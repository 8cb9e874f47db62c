package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/engine"
	"hookd/internal/httpserver"
)

// transformTestRequest is the body of POST /api/v1/transformations/test.
type transformTestRequest struct {
	// EventID names a stored event to run on; Event is a sample instead.
	EventID string       `json:"event_id"`
	Event   *sampleEvent `json:"event"`
	// Transform is the JavaScript to run; without it, the transforms of
	// Subscription (and of the event's source) run, as an attempt would.
	Transform string `json:"transform"`
	// FilterExpr is a CEL filter checked first; Enrich an enrichment (the
	// shape of a subscription's enrich key) run before the transforms.
	FilterExpr string          `json:"filter_expr"`
	Enrich     json.RawMessage `json:"enrich"`
	// Subscription supplies the steps not given above: its filter_expr,
	// its enrich, and its transforms (with its source's).
	Subscription string `json:"subscription"`
}

// sampleEvent is an event given in the request: body any JSON (an object
// or array is sent as JSON, a string as it is).
type sampleEvent struct {
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Key         string          `json:"key"`
	Headers     map[string]any  `json:"headers"`
	Body        json.RawMessage `json:"body"`
	ContentType string          `json:"content_type"`
}

// transformTestResponse is the answer: result null when the filter does
// not match, when the event is skipped, or on error.
type transformTestResponse struct {
	Result      *transformResult `json:"result"`
	Matched     bool             `json:"matched"`
	FilterError string           `json:"filter_error,omitempty"`
	Skipped     bool             `json:"skipped"`
	Logs        []string         `json:"logs"`
	Steps       []testStep       `json:"steps"`
	DurationMS  float64          `json:"duration_ms"`
	Error       string           `json:"error,omitempty"`
	Retriable   bool             `json:"retriable,omitempty"`
}

// testStep is one step that ran and the time it took.
type testStep struct {
	Name       string  `json:"name"`
	DurationMS float64 `json:"duration_ms"`
}

// transformResult is what would be sent.
type transformResult struct {
	ID          string            `json:"id"`
	Source      string            `json:"source"`
	Type        string            `json:"type"`
	Key         string            `json:"key"`
	Headers     map[string]string `json:"headers"`
	Body        any               `json:"body"`
	ContentType string            `json:"content_type"`
	Path        *string           `json:"path,omitempty"`
	Query       *string           `json:"query,omitempty"`
}

func (a *API) routeTransform() {
	a.handle("POST /api/v1/transformations/test", a.testTransform)
}

// testTransform runs a delivery's steps on a stored event or a sample —
// filter_expr, enrich, transforms, in that order — and answers with the
// result, whether the filter matched, the console.log lines and the time
// each step took. Nothing is sent or stored. A transformation that fails
// (a syntax error too) or a failed fetch of the enrichment is a 200 with
// error: it is the test's finding. An invalid filter_expr or enrich is a
// 400, as when a subscription is created.
func (a *API) testTransform(w http.ResponseWriter, r *http.Request) error {
	if a.eng == nil {
		return hookd.Errorf(hookd.ENotFound, "no delivery engine")
	}
	b, err := readDefinition(w, r)
	if err != nil {
		return err
	}
	var req transformTestRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return hookd.Errorf(hookd.EInvalid, "invalid request: %v (keys: event_id or event, transform, filter_expr, enrich, subscription)", err)
	}
	var ev *hookd.Event
	switch {
	case req.EventID != "" && req.Event != nil:
		return hookd.Errorf(hookd.EInvalid, "give event_id or event, not both")
	case req.EventID != "":
		if ev, err = a.st.EventGet(r.Context(), req.EventID); err != nil {
			return err
		}
	case req.Event != nil:
		if ev, err = req.Event.event(); err != nil {
			return err
		}
	default:
		return hookd.Errorf(hookd.EInvalid, "give event_id (a stored event) or event (a sample)")
	}
	p := engine.TransformTestParams{Event: ev, Transform: req.Transform, FilterExpr: req.FilterExpr, Subscription: req.Subscription}
	if raw := bytes.TrimSpace(req.Enrich); len(raw) > 0 && string(raw) != "null" {
		if raw[0] != '{' {
			return hookd.Errorf(hookd.EInvalid, "enrich: want an object {url, into, auth, cache, timeout}")
		}
		// Decoded as a subscription's enrich key is: unknown keys refused,
		// durations as strings.
		s, err := config.ParseSubscription(append(append([]byte(`{"enrich":`), raw...), '}'))
		if err != nil {
			return hookd.Errorf(hookd.EInvalid, "%v", err)
		}
		p.Enrich = s.Enrich
	}
	out, err := a.eng.TransformTest(r.Context(), p)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, newTransformTestResponse(ev, out))
	return nil
}

func newTransformTestResponse(ev *hookd.Event, out engine.TransformTest) transformTestResponse {
	resp := transformTestResponse{Logs: out.Logs, DurationMS: millis(out.Duration), Skipped: out.Skipped, Matched: out.Matched, Steps: []testStep{}}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	for _, s := range out.Steps {
		resp.Steps = append(resp.Steps, testStep{Name: s.Name, DurationMS: millis(s.Duration)})
	}
	if out.FilterErr != nil {
		resp.FilterError = out.FilterErr.Error()
	}
	if out.Err != nil {
		resp.Error, resp.Retriable = out.Err.Error(), out.Retriable
		return resp
	}
	if out.Skipped || !out.Matched {
		return resp
	}
	e := out.Event
	res := &transformResult{ID: e.ID, Source: e.Source, Type: e.Type, Key: e.Key, Headers: out.Set, ContentType: e.ContentType, Path: e.Path, Query: e.Query}
	if res.Headers == nil {
		res.Headers = map[string]string{}
	}
	switch {
	case isJSONMedia(e.ContentType) && json.Valid(e.Body):
		res.Body = json.RawMessage(e.Body)
	case utf8.Valid(e.Body):
		res.Body = string(e.Body)
	default:
		res.Body = strings.ToValidUTF8(string(e.Body), "\uFFFD")
	}
	resp.Result = res
	return resp
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func isJSONMedia(ct string) bool {
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// event makes a hookd.Event of a sample.
func (s *sampleEvent) event() (*hookd.Event, error) {
	ev := &hookd.Event{ID: s.ID, Source: s.Source, Type: s.Type, Key: s.Key, ContentType: s.ContentType}
	if ev.ID == "" {
		ev.ID = "evt_test"
	}
	if len(s.Headers) > 0 {
		ev.Headers = make(map[string][]string, len(s.Headers))
		for k, v := range s.Headers {
			switch x := v.(type) {
			case string:
				ev.Headers[k] = []string{x}
			case []any:
				for _, e := range x {
					str, ok := e.(string)
					if !ok {
						return nil, hookd.Errorf(hookd.EInvalid, "event.headers.%s: want a string or a list of strings", k)
					}
					ev.Headers[k] = append(ev.Headers[k], str)
				}
			default:
				return nil, hookd.Errorf(hookd.EInvalid, "event.headers.%s: want a string or a list of strings", k)
			}
		}
	}
	body := bytes.TrimSpace(s.Body)
	switch {
	case len(body) == 0 || string(body) == "null":
	case body[0] == '"':
		var str string
		if err := json.Unmarshal(body, &str); err != nil {
			return nil, hookd.Errorf(hookd.EInvalid, "event.body: %v", err)
		}
		ev.Body = []byte(str)
		if ev.ContentType == "" {
			ev.ContentType = "text/plain; charset=utf-8"
		}
	default:
		ev.Body = []byte(body)
		if ev.ContentType == "" {
			ev.ContentType = "application/json"
		}
	}
	return ev, nil
}
