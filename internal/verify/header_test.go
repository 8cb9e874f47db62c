package verify

import (
	"context"
	"strings"
	"testing"
)

func TestHeader(t *testing.T) {
	t.Parallel()
	v := credMustBuild(t, nil, "header", map[string]any{"header": "x-auth-token", "secrets": []string{"loyalty-current-0123", "loyalty-previous-4567"}})
	secrets := []string{"loyalty-current-0123", "loyalty-previous-4567"}
	tests := []struct {
		name       string
		headers    []string
		wantStatus int
	}{
		{"Valid", []string{"X-Auth-Token", "loyalty-current-0123"}, 200},
		{"RotatedSecret", []string{"X-Auth-Token", "loyalty-previous-4567"}, 200},
		{"NameCaseInsensitive", []string{"x-AUTH-token", "loyalty-current-0123"}, 200},
		{"Wrong", []string{"X-Auth-Token", "loyalty-currenT"}, 401},
		{"Prefix", []string{"X-Auth-Token", "loyalty-curren"}, 401},
		{"Empty", []string{"X-Auth-Token", ""}, 401},
		{"Missing", nil, 401},
		{"OtherHeader", []string{"Authorization", "loyalty-current-0123"}, 401},
		{"Twice", []string{"X-Auth-Token", "loyalty-current-0123", "X-Auth-Token", "loyalty-current-0123"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(context.Background(), credRequest("192.0.2.1:1234", tt.headers...))
			// A custom header has no registered scheme: no challenge.
			credCheck(t, err, tt.wantStatus, "", secrets...)
		})
	}
	if got := v.(Chain).CredentialHeaders(); len(got) != 1 || got[0] != "X-Auth-Token" {
		t.Errorf("CredentialHeaders: got %v, want [X-Auth-Token]", got)
	}
}

func TestHeaderOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    map[string]any
		wantErr string
	}{
		{"Valid", map[string]any{"header": "X-Auth-Token", "secrets": []string{"s-0123456789abcdef"}}, ""},
		{"NoHeader", map[string]any{"secrets": []string{"s-0123456789abcdef"}}, "header: required"},
		{"BadHeaderName", map[string]any{"header": "X Auth", "secrets": []string{"s-0123456789abcdef"}}, "header: \"X Auth\" is not a valid header name"},
		{"NoSecrets", map[string]any{"header": "X-Auth-Token"}, "secrets: required"},
		{"EmptySecret", map[string]any{"header": "X-Auth-Token", "secrets": []string{""}}, "secrets: empty"},
		{"ShortSecret", map[string]any{"header": "X-Auth-Token", "secrets": []string{"inbox-key"}}, "secrets: shorter than 16 characters"},
		{"EmptyRotatedSecret", map[string]any{"header": "X-Auth-Token", "secrets": []string{"a-0123456789abcdef", ""}}, "secrets[1]: empty"},
		{"WhitespaceSecret", map[string]any{"header": "X-Auth-Token", "secrets": []string{" a"}}, "secrets: starts or ends with whitespace"},
		{"ControlSecret", map[string]any{"header": "X-Auth-Token", "secrets": []string{"a\nb"}}, "secrets: contains a control character"},
		{"OneSecretNotInAList", map[string]any{"header": "X-Auth-Token", "secrets": "s-0123456789abcdef"}, ""},
		{"SecretsMap", map[string]any{"header": "X-Auth-Token", "secrets": map[string]any{"s3cr3t": "v4lue"}}, "want a string or a list"},
		{"SecretsNested", map[string]any{"header": "X-Auth-Token", "secrets": []any{[]string{"s3cr3t"}}}, "want a string"},
		{"UnknownOption", map[string]any{"header": "X-Auth-Token", "secrets": []string{"s-0123456789abcdef"}, "secret": "s"}, "unknown key \"secret\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := credBuild(t, nil, "header", tt.opts)
			credWantErr(t, err, tt.wantErr)
			if err != nil && (strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "v4lue")) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}
