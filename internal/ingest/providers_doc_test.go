package ingest_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"hookd/internal/config"
	"hookd/internal/verify"
)

// TestProvidersDoc: every YAML snippet of docs/PROVIDERS.md is a source
// hookd starts with, its variables set, and every preset of the table has
// a section with a snippet.
func TestProvidersDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROVIDERS.md")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// Values of the shape each variable needs; any other is a secret.
	special := map[string]string{
		"DISCORD_PUBLIC_KEY":          hex.EncodeToString(pub),
		"SENDGRID_WEBHOOK_PUBLIC_KEY": base64.StdEncoding.EncodeToString(der),
		"ADYEN_HMAC_KEY":              "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
	}
	vars := regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	for _, m := range vars.FindAllStringSubmatch(string(doc), -1) {
		v, ok := special[m[1]]
		switch {
		case ok:
		case strings.Contains(m[1], "WHSEC") || strings.Contains(m[1], "SVIX") || strings.Contains(m[1], "CLERK") || strings.Contains(m[1], "RESEND"):
			v = "whsec_" + base64.StdEncoding.EncodeToString([]byte("a-signing-secret-of-32-bytes-ok!"))
		default:
			v = "a-secret-of-more-than-sixteen-bytes"
		}
		t.Setenv(m[1], v)
	}
	n := 0
	for _, b := range blocks {
		y := b[1]
		if strings.HasPrefix(y, "- ") {
			// A verify list item.
			y = "sources:\n  - name: p\n    verify:\n" + indent(y, "      ")
		}
		if !strings.HasPrefix(y, "sources:") {
			continue
		}
		n++
		t.Run(strings.SplitN(strings.TrimSpace(b[1]), "\n", 3)[min(1, strings.Count(strings.TrimSpace(b[1]), "\n"))], func(t *testing.T) {
			newHarnessConfig(t, parseConfig(t, y))
		})
	}
	// The table's id, type and time columns are the preset's selectors.
	cell := func(c string) string { return strings.Trim(strings.TrimSpace(c), "`") }
	for _, row := range regexp.MustCompile("(?m)^\\| \\[`([a-z_]+)`\\].*$").FindAllStringSubmatch(string(doc), -1) {
		cols := strings.Split(strings.Trim(row[0], "|"), "|")
		if len(cols) != 6 {
			t.Errorf("preset %s: table row has %d columns, want 6", row[1], len(cols))
			continue
		}
		ev := verify.PresetEvent([]config.Verify{{Type: row[1]}}, config.EventRules{})
		for i, want := range []string{ev.ID, ev.Type, ev.Timestamp} {
			if want == "" {
				want = "—"
			}
			if got := cell(cols[3+i]); got != want {
				t.Errorf("preset %s: the table says %q, the preset selects %q", row[1], got, want)
			}
		}
	}
	for _, row := range regexp.MustCompile("(?m)^\\| \\[`([a-z_]+)`\\]").FindAllStringSubmatch(string(doc), -1) {
		if !regexp.MustCompile("(?m)^### .*`" + row[1] + "`").MatchString(string(doc)) {
			t.Errorf("preset %s: in the table, without a section", row[1])
		}
		if !strings.Contains(string(doc), "type: "+row[1]) {
			t.Errorf("preset %s: no snippet uses it", row[1])
		}
	}
	if n < 43 {
		t.Errorf("snippets: got %d, want one per preset at least (43)", n)
	}
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n") + "\n"
}
