package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"hookd"
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
	Transform    string `json:"transform"`
	Subscription string `json:"subscription"`
	// Further steps (filter_expr, enrich) add their fields here and their
	// run in testTransform's marked spot.
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

// transformTestResponse is the answer: result null when the event is
// skipped (or on error).
type transformTestResponse struct {
	Result     *transformResult `json:"result"`
	Skipped    bool             `json:"skipped"`
	Logs       []string         `json:"logs"`
	DurationMS float64          `json:"duration_ms"`
	Error      string           `json:"error,omitempty"`
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

// testTransform runs a transformation on a stored event or a sample and
// answers with the result, the console.log lines and the time taken.
// Nothing is sent or stored. A transformation that fails (a syntax error
// too) is a 200 with error: it is the test's finding.
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
		return hookd.Errorf(hookd.EInvalid, "invalid request: %v (keys: event_id or event, transform, subscription)", err)
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
	// Further steps (filter_expr, enrich) run here, before the
	// transforms, as on an attempt.
	out, err := a.eng.TransformTest(ev, req.Transform, req.Subscription)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, newTransformTestResponse(ev, out))
	return nil
}

func newTransformTestResponse(ev *hookd.Event, out engine.TransformTest) transformTestResponse {
	resp := transformTestResponse{Logs: out.Logs, DurationMS: float64(out.Duration.Microseconds()) / 1000, Skipped: out.Skipped}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	if out.Err != nil {
		resp.Error = out.Err.Error()
		return resp
	}
	if out.Skipped {
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
