package console

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// formsCheck runs in node against the embedded forms.js: the URL masking
// the destination views show, and how an API error message picks the
// field its error is shown at.
const formsCheck = `
import { maskURL, errorPath, fieldFor, NAME_RE } from './forms.js';
const fails = [];
const eq = (what, got, want) => { if (got !== want) fails.push(what + ': got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want)); };
eq('plain', maskURL('https://example.com/h?x=1'), 'https://example.com/h?x=1');
eq('userinfo', maskURL('amqp://user:xxxxx@rabbit:5672/vh'), 'amqp://***@rabbit:5672/vh');
eq('user only', maskURL('https://bob@example.com/'), 'https://***@example.com/');
eq('query', maskURL('https://e.com/p?token=abc&x=1&api_key=k&sig=s&Signature=t&password=p&secret=q&key=z'),
  'https://e.com/p?token=***&x=1&api_key=***&sig=***&Signature=***&password=***&secret=***&key=***');
eq('encoded name', maskURL('https://e.com/?access%5Ftoken=abc'), 'https://e.com/?access%5Ftoken=***');
eq('at in query', maskURL('https://e.com/p?email=a@b.c'), 'https://e.com/p?email=a@b.c');
eq('fragment', maskURL('https://e.com/#token=abc'), 'https://e.com/#***');
eq('not a URL', maskURL('not a url'), 'not a url');
for (const [n, ok] of [['orders', true], ['a.b-c_1', true], ['9', true], ['..', false], ['.x', false], ['-x', false], ['_x', false], ['a'.repeat(64), true], ['a'.repeat(65), false], ['a b', false]]) {
  eq('name ' + n, NAME_RE.test(n), ok);
}
const keys = ['name', 'url', 'timeout', 'auth.type', 'auth.value', 'verify[0].type', 'verify[0].secrets', 'destination'];
const pick = (msg, aliases) => fieldFor(errorPath(msg).path, keys, aliases);
eq('url', pick('invalid destination hooks: url: required'), 'url');
eq('no name', pick('invalid destination: name: invalid name "a b"'), 'name');
eq('nested', pick('invalid destination hooks: auth.value: [redacted] stands for a stored secret'), 'auth.value');
eq('under', pick('invalid destination hooks: auth: unknown key "x"'), 'auth.type');
eq('verify', pick('invalid source: verify[0] (hmac): secrets: at least one secret is required'), 'verify[0].secrets');
eq('alias', pick('invalid source: verify[0] (api_key): keys[1]: shorter than 16 characters', { 'verify[0].keys': 'verify[0].secrets' }), 'verify[0].secrets');
eq('method', pick('invalid source: verify[0]: unknown or unsupported method "x" (available: [a b])'), 'verify[0].type');
eq('dest in dest', pick('invalid destination d2: destination "d2": url: address 127.0.0.1 is loopback'), 'url');
eq('subscription', pick('destination: no destination named "nope"'), 'destination');
eq('no field', pick('invalid destination hooks: retry: max_attempts: want a whole number'), '');
eq('no path', pick('unknown subscription keys: sources (a subscription has …)'), '');
eq('text', errorPath('invalid destination hooks: timeout: invalid duration "abc" (want "30s")').text, 'timeout: invalid duration "abc" (want "30s")');
if (fails.length) { console.log(fails.join('\n')); process.exit(1); }
console.log('ok');
`

func TestFormsHelpersInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir := t.TempDir()
	for _, name := range scripts(t) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(embedded(t, name)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The files are ES modules: a package.json says so to node.
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"type": "module"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "check.js"), []byte(formsCheck), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "check.js")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("node check.js: %v\n%s", err, out)
	}
}
