// Package browsertest drives the web console in a real browser.
//
// Its tests (in _test.go files only: nothing here is imported by the
// hookd binary) build hookd once, start it on 127.0.0.1 with a temporary
// data directory, and drive Debian's chromium through the DevTools
// protocol (chromedp) against /console/: signing in with the token form,
// events and their detail, the session shared by tabs, the failed queue,
// the stats charts, and a phone-sized and dark-mode rendering; and an
// operator's whole flow (flow_test.go): a destination and a subscription
// made with the forms, the stats view, events found by type, a replay
// of one event and a bulk replay, a test event, and deletes that ask
// first. Any error
// the page writes to its console, uncaught exception or Content Security
// Policy violation fails the test that caused it.
//
// The browser is chromium (or chromium-browser) from PATH, or the file
// HOOKD_TEST_CHROMIUM names. Without one the tests skip, unless
// HOOKD_TEST_REQUIRE_SERVICES=1, where they fail. Screenshots go to the
// directory HOOKD_SCREENSHOTS names, or to a temporary directory.
//
// To add a test, make a browser with newBrowser first (it skips when
// there is none, before hookd is built), start a server with startHookd,
// open a tab with (*browser).newTab, and use the tab's helpers (open,
// signIn, waitVisible, waitText, waitJS, click, text, eval, screenshot;
// expect for a page error the test causes on purpose).
package browsertest
