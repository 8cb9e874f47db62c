package verify

import (
	"slices"
	"testing"
)

// providerPresets are the presets named after providers (issue 13 asks for
// at least forty), each type the provider's name in lower case.
var providerPresets = []string{
	"github", "stripe", "shopify", "slack",
	"meta", "zoom", "twitch", "discord",
	"dropbox", "okta", "msgraph", "sns",
	"gitlab", "bitbucket", "gitea", "twilio", "sendgrid", "mailgun", "postmark", "square",
	"paddle", "adyen", "linear", "intercom", "zendesk",
	"hubspot", "clerk", "resend", "svix", "typeform", "calendly", "xero", "lemonsqueezy",
	"sentry", "pagerduty", "vercel", "coinbase", "razorpay", "docusign", "contentful",
	"segment", "jira",
}

// TestProviderPresetsRegistered checks every provider preset is a
// verification method and brings event selectors.
func TestProviderPresetsRegistered(t *testing.T) {
	if n := len(providerPresets); n < 40 {
		t.Fatalf("%d provider presets listed, want at least 40", n)
	}
	types := Types()
	for _, p := range providerPresets {
		if !slices.Contains(types, p) {
			t.Errorf("preset %q: not registered", p)
			continue
		}
		// Dropbox's notifications carry only the accounts that changed.
		if ev := presetEvents[p]; ev.ID == "" && ev.Type == "" && ev.Timestamp == "" && p != "dropbox" {
			t.Errorf("preset %q: registered without event selectors (RegisterPreset)", p)
		}
	}
}
