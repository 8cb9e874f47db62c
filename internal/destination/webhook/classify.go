package webhook

import (
	"net/http"
	"time"

	"hookd/internal/destination"
)

// Classify turns an HTTP answer into an attempt outcome: see
// destination.ClassifyHTTP, which it applies to the answer's Retry-After.
// The engine's retry_on: any_non_2xx option overrides the final classes;
// Classify does not know about it.
func Classify(status int, header http.Header, now time.Time) error {
	return destination.ClassifyHTTP(status, header.Get("Retry-After"), now)
}

// ParseRetryAfter is destination.ParseRetryAfter.
var ParseRetryAfter = destination.ParseRetryAfter

const maxRetryAfter = destination.MaxRetryAfter
