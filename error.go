package hookd

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status in internal/httpserver.
const (
	EInvalid      = "invalid"            // 400: the request is malformed
	EUnauthorized = "unauthorized"       // 401: missing or bad credentials
	EForbidden    = "forbidden"          // 403: not allowed from here
	ENotFound     = "not_found"          // 404
	EConflict     = "conflict"           // 409
	ETooLarge     = "too_large"          // 413: body over the limit
	ETimeout      = "timeout"            // 408: the request body did not arrive in time
	ERateLimited  = "rate_limited"       // 429
	EInternal     = "internal"           // 500: details are logged, never shown
	EUnavailable  = "unavailable"        // 503: storage down, full or too slow; retry later
	EMethod       = "method_not_allowed" // 405
)

// Error is an error that carries a code from the vocabulary above and a
// message that is safe to show to a client.
type Error struct {
	Code    string
	Message string
	// Err is the underlying cause; it is logged, never shown to a client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of err, or "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EInternal {
		return e.Message
	}
	return "internal error"
}
