package webhook

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
)

func TestOptions(t *testing.T) {
	t.Parallel()
	const u = "https://hooks.example.com/in"
	tests := []struct {
		name    string
		opts    map[string]any
		wantErr string // substring; "" means valid
	}{
		{"Minimal", map[string]any{"url": u}, ""},
		{"PlainHTTP", map[string]any{"url": "http://127.0.0.1:9/x"}, ""},
		{"Full", map[string]any{"url": u, "method": "put", "headers": map[string]string{"X-Api-Key": "k", "User-Agent": "acme"},
			"timeout": "10s", "connect_timeout": "2s", "max_response": "512"}, ""},
		{"MaxResponseZero", map[string]any{"url": u, "max_response": 0}, ""},
		{"MaxResponseKiB", map[string]any{"url": u, "max_response": "1KiB"}, ""},
		{"MissingURL", map[string]any{}, "url: required"},
		{"BlankURL", map[string]any{"url": "  "}, "url: required"},
		{"FTP", map[string]any{"url": "ftp://files.example.com/x"}, `url: scheme "ftp" is not supported`},
		{"Relative", map[string]any{"url": "/hooks"}, "url: scheme"},
		{"NoScheme", map[string]any{"url": "hooks.example.com/x"}, "url: scheme"},
		{"NoHost", map[string]any{"url": "https:///x"}, "url: no host"},
		{"Unparseable", map[string]any{"url": "https://exa mple.com/?token=s3cr3t"}, "url: invalid"},
		{"Credentials", map[string]any{"url": "https://user:s3cr3t@hooks.example.com/"}, "url: credentials"},
		{"BadMethod", map[string]any{"url": u, "method": "FETCH"}, `method: "FETCH" is not supported`},
		{"GetMethod", map[string]any{"url": u, "method": "GET"}, "method:"},
		{"TimeoutZero", map[string]any{"url": u, "timeout": "0s"}, "timeout: must be positive"},
		{"TimeoutNegative", map[string]any{"url": u, "timeout": "-1s"}, "timeout: must be positive"},
		{"TimeoutBareNumber", map[string]any{"url": u, "timeout": 60}, "invalid duration"},
		{"ConnectTimeoutZero", map[string]any{"url": u, "connect_timeout": "0s"}, "connect_timeout: must be positive"},
		{"ConnectLongerThanTotal", map[string]any{"url": u, "timeout": "1s", "connect_timeout": "2s"}, "connect_timeout: 2s is longer than timeout 1s"},
		{"MaxResponseTooLarge", map[string]any{"url": u, "max_response": "2KiB"}, "max_response: at most 1024 bytes"},
		{"MaxResponseNegative", map[string]any{"url": u, "max_response": -1}, "invalid size"},
		{"HeaderWebhookID", map[string]any{"url": u, "headers": map[string]string{"Webhook-Id": "x"}}, "headers: Webhook-Id cannot be set"},
		{"HeaderWebhookTimestamp", map[string]any{"url": u, "headers": map[string]string{"webhook-timestamp": "1"}}, "headers: webhook-timestamp cannot be set"},
		{"HeaderHookd", map[string]any{"url": u, "headers": map[string]string{"hookd-attempt": "1"}}, "headers: hookd-attempt cannot be set"},
		{"HeaderContentType", map[string]any{"url": u, "headers": map[string]string{"Content-Type": "text/plain"}}, "headers: Content-Type cannot be set"},
		{"HeaderHost", map[string]any{"url": u, "headers": map[string]string{"Host": "evil"}}, "headers: Host cannot be set"},
		{"HeaderBadName", map[string]any{"url": u, "headers": map[string]string{"X Api": "k"}}, `headers: "X Api" is not a valid header name`},
		{"HeaderBadValue", map[string]any{"url": u, "headers": map[string]string{"X-Api-Key": "s3cr3t\r\nX-Evil: 1"}}, "headers: X-Api-Key: value contains a control character"},
		{"HeaderTwice", map[string]any{"url": u, "headers": map[string]string{"X-A": "1", "x-a": "2"}}, "headers: x-a is given twice"},
		{"TooManyHeaders", map[string]any{"url": u, "headers": manyHeaders(MaxHeaders + 1)}, "headers: 65 headers, more than 64"},
		{"MostHeaders", map[string]any{"url": u, "headers": manyHeaders(MaxHeaders)}, ""},
		{"UnknownOption", map[string]any{"url": u, "retry_on": "any_non_2xx"}, "field retry_on not found"},
		{"TLSOff", map[string]any{"url": u, "insecure_skip_verify": true}, "field insecure_skip_verify not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(tt.opts))
			if err == nil {
				defer d.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Open: got %v, want no error", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Open: got no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Open: got %q, want it to contain %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("Open: error %q reveals a secret", err)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		opts             map[string]any
		timeout, connect time.Duration
		method           string
		maxResponse      int64
	}{
		{"Defaults", map[string]any{}, 60 * time.Second, 5 * time.Second, "POST", destination.MaxExcerpt},
		{"ShortTimeoutCapsConnect", map[string]any{"timeout": "2s"}, 2 * time.Second, 2 * time.Second, "POST", destination.MaxExcerpt},
		{"Explicit", map[string]any{"timeout": "30s", "connect_timeout": "1s", "method": "patch", "max_response": 100}, 30 * time.Second, time.Second, "PATCH", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts["url"] = "https://hooks.example.com/"
			d := openOpts(t, nil, tt.opts)
			s := d.s
			if s.timeout != tt.timeout || s.connectTimeout != tt.connect || s.method != tt.method || s.maxResponse != tt.maxResponse {
				t.Errorf("got timeout %s, connect %s, method %s, max_response %d; want %s, %s, %s, %d",
					s.timeout, s.connectTimeout, s.method, s.maxResponse, tt.timeout, tt.connect, tt.method, tt.maxResponse)
			}
			if d.transport.Proxy != nil {
				t.Error("transport uses a proxy; want none (proxies from the environment are ignored)")
			}
			if d.transport.TLSClientConfig.InsecureSkipVerify {
				t.Error("TLS verification is off")
			}
			if d.transport.TLSHandshakeTimeout != tt.connect {
				t.Errorf("TLS handshake timeout: got %s, want %s", d.transport.TLSHandshakeTimeout, tt.connect)
			}
		})
	}
}

func manyHeaders(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("X-H%d", i)] = "v"
	}
	return m
}
