package verify

import (
	"context"
	"slices"
	"testing"
)

func TestAPIKey(t *testing.T) {
	t.Parallel()
	v := credMustBuild(t, nil, "api_key", map[string]any{"keys": []string{"key-current-0123", "key-previous-4567"}})
	secrets := []string{"key-current-0123", "key-previous-4567"}
	tests := []struct {
		name          string
		headers       []string
		wantStatus    int
		wantChallenge string
	}{
		{"Bearer", []string{"Authorization", "Bearer key-current-0123"}, 200, ""},
		{"BearerLowerCase", []string{"Authorization", "bearer key-current-0123"}, 200, ""},
		{"XApiKey", []string{"X-Api-Key", "key-current-0123"}, 200, ""},
		{"RotatedKey", []string{"X-Api-Key", "key-previous-4567"}, 200, ""},
		{"RotatedKeyBearer", []string{"Authorization", "Bearer key-previous-4567"}, 200, ""},
		{"BothValid", []string{"Authorization", "Bearer key-current-0123", "X-Api-Key", "key-previous-4567"}, 200, ""},
		{"OtherAuthorizationSchemeWithXApiKey", []string{"Authorization", "Basic dTpw", "X-Api-Key", "key-current-0123"}, 200, ""},
		{"WrongBearer", []string{"Authorization", "Bearer key-current-0124"}, 401, ChallengeInvalidBearer},
		{"WrongXApiKey", []string{"X-Api-Key", "nope"}, 401, ChallengeInvalidBearer},
		{"OneOfTwoWrong", []string{"Authorization", "Bearer key-current-0123", "X-Api-Key", "nope"}, 401, ChallengeInvalidBearer},
		{"EmptyBearer", []string{"Authorization", "Bearer "}, 401, ChallengeInvalidBearer},
		{"TwoXApiKeys", []string{"X-Api-Key", "key-current-0123", "X-Api-Key", "key-current-0123"}, 401, ChallengeInvalidBearer},
		{"Missing", nil, 401, ChallengeBearer},
		{"OtherSchemeOnly", []string{"Authorization", "Basic a2V5LWN1cnJlbnQtMDEyMzo="}, 401, ChallengeBearer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(context.Background(), credRequest("192.0.2.1:1234", tt.headers...))
			credCheck(t, err, tt.wantStatus, tt.wantChallenge, secrets...)
		})
	}
	got := v.(Chain).CredentialHeaders()
	if !slices.Contains(got, "Authorization") || !slices.Contains(got, "X-Api-Key") {
		t.Errorf("CredentialHeaders: got %v, want Authorization and X-Api-Key", got)
	}
}

func TestAPIKeyOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    map[string]any
		wantErr string
	}{
		{"Valid", map[string]any{"keys": []string{"k-0123456789abcdef"}}, ""},
		{"NoKeys", map[string]any{}, "keys: required"},
		{"EmptyKey", map[string]any{"keys": []string{""}}, "keys: empty"},
		{"ShortKey", map[string]any{"keys": []string{"tour-app-key-123"[:15]}}, "keys: shorter than 16 characters"},
		{"ShortRotatedKey", map[string]any{"keys": []string{"k-0123456789abcdef", "short"}}, "keys[1]: shorter than 16 characters"},
		{"Whitespace", map[string]any{"keys": []string{"a-0123456789abcdef", "b "}}, "keys[1]: starts or ends with whitespace"},
		{"UnknownOption", map[string]any{"keys": []string{"k-0123456789abcdef"}, "header": "X-Key"}, "unknown key \"header\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := credBuild(t, nil, "api_key", tt.opts)
			credWantErr(t, err, tt.wantErr)
		})
	}
}
