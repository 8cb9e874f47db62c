package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/ingest"
)

// providerCase is a provider's signed request, as the provider's SDK or its
// documentation produces it, sent to a source using the provider's preset.
// runProviderCase checks that the preset accepts it and that the preset's
// selectors read the event id, type and time the provider sends, and that
// each bad variant is refused with nothing stored: the test fails if the
// signature check or a selector is wrong.
type providerCase struct {
	// preset is the preset's type, such as "gitlab".
	preset string
	// vector says where the request comes from: the SDK (module, version,
	// function) or the documentation (page and section).
	vector string
	// verify is the YAML of the source's verify list, such as
	// "- type: gitlab\n  secrets: [s3cr3t]".
	verify string
	// now is the clock, for timestamped schemes (zero: the real clock).
	now time.Time
	// method defaults to POST, target (path and query) to "/in/p".
	method, target string
	header         map[string]string
	body           string
	// wantID, wantType and wantTime are what the preset's selectors must
	// read ("" and zero: nothing).
	wantID, wantType string
	wantTime         time.Time
	// emptyAnswer: the provider requires a success answer with no body.
	emptyAnswer bool
	// bad are variants the preset must refuse (401 or 403): at least one,
	// and for a scheme that signs the body, a changed body.
	bad []providerVariant
	// options, if set, changes the handler's options (an egress guard
	// for a preset that fetches keys).
	options func(*ingest.Options)
}

// providerVariant changes a providerCase's request: headers set (a value
// "" deletes the header), the body or the target replaced, or the verify
// list replaced (a wrong secret).
type providerVariant struct {
	name   string
	header map[string]string
	body   *string
	target string
	verify string
}

// changedBody returns a variant whose body is body with its last byte
// changed.
func changedBody(body string) providerVariant {
	b := []byte(body)
	b[len(b)-1] ^= 1
	s := string(b)
	return providerVariant{name: "body changed", body: &s}
}

// wrongSecret returns a variant whose source has verify as its verify list.
func wrongSecret(verify string) providerVariant {
	return providerVariant{name: "wrong secret", verify: verify}
}

func runProviderCase(t *testing.T, c providerCase) {
	t.Helper()
	if c.vector == "" {
		t.Fatalf("%s: say where the vector comes from", c.preset)
	}
	if len(c.bad) == 0 {
		t.Fatalf("%s: give at least one request the preset must refuse", c.preset)
	}
	h := providerHarnessWith(t, c.verify, c.now, c.options)
	target := c.target
	if target == "" {
		target = "/in/p"
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	a := send(t, h.srv, method, target, strings.NewReader(c.body), providerHeader(c.header, nil))
	if a.status != http.StatusOK {
		t.Fatalf("%s (%s): got %d %s, want 200", c.preset, c.vector, a.status, a.body)
	}
	var e *hookd.Event
	if c.emptyAnswer {
		// The provider requires an answer with no body.
		if len(a.body) != 0 || a.header.Get("Content-Type") != "" {
			t.Fatalf("%s: got Content-Type %q and body %q, want no body", c.preset, a.header.Get("Content-Type"), a.body)
		}
		evs := h.events(t)
		if len(evs) != 1 {
			t.Fatalf("%s: stored events: got %d, want 1", c.preset, len(evs))
		}
		e = evs[0]
	} else {
		e = h.event(t, wantOK(t, a, http.StatusOK).ID)
	}
	if e.ExternalID != c.wantID {
		t.Errorf("%s: event id: got %q, want %q", c.preset, e.ExternalID, c.wantID)
	}
	if e.Type != c.wantType {
		t.Errorf("%s: event type: got %q, want %q", c.preset, e.Type, c.wantType)
	}
	if !e.OccurredAt.Equal(c.wantTime.Truncate(time.Microsecond)) {
		t.Errorf("%s: event time: got %v, want %v", c.preset, e.OccurredAt, c.wantTime)
	}
	for _, v := range c.bad {
		hv := h
		if v.verify != "" {
			hv = providerHarnessWith(t, v.verify, c.now, c.options)
		}
		body := c.body
		if v.body != nil {
			body = *v.body
		}
		tg := target
		if v.target != "" {
			tg = v.target
		}
		a := send(t, hv.srv, method, tg, strings.NewReader(body), providerHeader(c.header, v.header))
		if a.status != http.StatusUnauthorized && a.status != http.StatusForbidden {
			t.Errorf("%s, %s: got %d %s, want 401 or 403", c.preset, v.name, a.status, a.body)
		}
		if v.verify != "" {
			hv.wantCount(t, 0)
		}
	}
	h.wantCount(t, 1)
}

// providerHarness serves one source "p" with the given verify list, its
// clock at now (the real clock when zero).
func providerHarness(t *testing.T, verifyYAML string, now time.Time) *harness {
	t.Helper()
	return providerHarnessWith(t, verifyYAML, now, nil)
}

// providerHarnessWith is providerHarness with the handler's options
// changed by opt.
func providerHarnessWith(t *testing.T, verifyYAML string, now time.Time, opt func(*ingest.Options)) *harness {
	t.Helper()
	var b strings.Builder
	b.WriteString("- name: p\n  verify:\n")
	for _, l := range strings.Split(strings.TrimRight(verifyYAML, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	cfg := parseSources(t, b.String())
	return newHarnessWith(t, cfg, func(o *ingest.Options) {
		if !now.IsZero() {
			o.Now = func() time.Time { return now }
		}
		if opt != nil {
			opt(o)
		}
	})
}

func providerHeader(base, change map[string]string) http.Header {
	h := http.Header{}
	for k, v := range base {
		h.Set(k, v)
	}
	for k, v := range change {
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
	}
	return h
}

// TestProviderHarnessCatchesAWrongPreset checks the harness itself with
// the github preset and GitHub's documented example ("Validating webhook
// deliveries", "Testing the webhook payload validation"): a wrong selector
// or a changed body must be reported.
func TestProviderHarnessCatchesAWrongPreset(t *testing.T) {
	runProviderCase(t, providerCase{
		preset: "github",
		vector: "documentation: GitHub, Validating webhook deliveries, Testing the webhook payload validation",
		verify: "- type: github\n  secrets: [\"It's a Secret to Everybody\"]",
		header: map[string]string{
			"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
			"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			"X-GitHub-Event":      "push",
		},
		body:     "Hello, World!",
		wantID:   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		wantType: "push",
		bad: []providerVariant{
			changedBody("Hello, World!"),
			{name: "signature changed", header: map[string]string{"X-Hub-Signature-256": "sha256=657107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}},
			wrongSecret("- type: github\n  secrets: [\"It's a secret to everybody\"]"),
		},
	})
}
