package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"hookd/internal/secret"
)

const marker = "hunter2-SECRET-marker"

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"x", secret.Redacted},
		{marker, secret.Redacted},
	} {
		if got := secret.Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%d bytes): got %q, want %q", len(tc.in), got, tc.want)
		}
	}
}

func TestValueReveal(t *testing.T) {
	t.Parallel()
	v := secret.NewValue(marker)
	if v.Reveal() != marker {
		t.Error("Reveal: got something else, want the secret")
	}
	if v.IsZero() {
		t.Error("IsZero: got true, want false")
	}
	var zero secret.Value
	if zero.Reveal() != "" || !zero.IsZero() {
		t.Errorf("zero Value: got Reveal %q IsZero %v, want \"\" true", zero.Reveal(), zero.IsZero())
	}
}

func TestValueNeverRenders(t *testing.T) {
	t.Parallel()
	v := secret.NewValue(marker)
	type exported struct {
		Name   string
		Secret secret.Value
		Ptr    *secret.Value
	}
	type unexported struct {
		name   string
		secret secret.Value
	}
	outer := exported{Name: "n", Secret: v, Ptr: &v}
	inner := unexported{name: "n", secret: v}

	var rendered []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		rendered = append(rendered,
			fmt.Sprintf(verb, v), fmt.Sprintf(verb, &v),
			fmt.Sprintf(verb, outer), fmt.Sprintf(verb, inner), fmt.Sprintf(verb, []secret.Value{v}),
			fmt.Sprintf(verb, map[string]secret.Value{"k": v}), fmt.Sprintf(verb, any(v)))
	}
	rendered = append(rendered, fmt.Sprint(v), fmt.Sprintln(v, outer), v.String(), v.GoString())

	for _, x := range []any{v, &v, outer, []secret.Value{v}, map[string]secret.Value{"k": v}} {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		rendered = append(rendered, string(b))
	}
	if b, _ := json.Marshal(v); string(b) != `"[redacted]"` {
		t.Errorf("json.Marshal: got %s, want \"[redacted]\"", b)
	}
	if b, _ := v.MarshalText(); string(b) != secret.Redacted {
		t.Errorf("MarshalText: got %s, want %s", b, secret.Redacted)
	}

	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("m", "secret", v, "ptr", &v, "outer", outer, "inner", inner, "any", any(v))
		l.Info("m", slog.Any("secret", v), slog.Group("g", "s", v))
		l.With("secret", v).Info("m")
	}
	rendered = append(rendered, logs.String())
	if !strings.Contains(logs.String(), `"secret":"[redacted]"`) {
		t.Errorf("slog JSON: got %s, want \"secret\":\"[redacted]\"", logs.String())
	}

	for _, s := range rendered {
		if strings.Contains(s, marker) || strings.Contains(s, "SECRET") || strings.Contains(s, fmt.Sprintf("%x", marker)[:16]) {
			t.Errorf("secret leaked: %s", s)
		}
	}
}
