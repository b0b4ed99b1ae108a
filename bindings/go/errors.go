package barrage

/*
#include <barrage.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error is every failure the engine reports. Status is the negative
// brg_status code, Name its BRG_E_* name, Message the engine's detail text.
// For ErrHTTP failures HTTPStatus and Body carry the server's answer, and
// Header its header fields when Request.ResponseHeaders asked; RetryAfter
// the wait its Retry-After asked for.
//
// errors.Is(err, ErrTimeout) (and the other sentinels) compares Status.
// When the failure came from a context (cancel or deadline), errors.Is also
// matches context.Canceled or context.DeadlineExceeded.
type Error struct {
	Status       int
	Name         string
	Message      string
	HTTPStatus   int
	Body         []byte
	Attempts     int
	Header       http.Header // the latest answer's header fields (Request.ResponseHeaders); else nil
	retryAfter   time.Duration
	retryAfterOK bool
	ctxErr       error
}

// RetryAfter is the latest answer's Retry-After (or retry-after-ms) as the
// server sent it; ok is false when it sent none, when no answer arrived, and
// with a libbarrage older than 0.4. Not clamped by Options.MaxServerWait.
func (e *Error) RetryAfter() (d time.Duration, ok bool) {
	return e.retryAfter, e.retryAfterOK
}

func (e *Error) Error() string {
	s := e.Name
	if e.Message != "" {
		s += ": " + e.Message
	} else {
		s += ": " + statusText(e.Status)
	}
	if e.HTTPStatus != 0 && e.Status == int(C.BRG_E_HTTP) {
		s += fmt.Sprintf(" (HTTP %d)", e.HTTPStatus)
	}
	if e.ctxErr != nil {
		s += " (" + e.ctxErr.Error() + ")"
	}
	return "barrage: " + s
}

// Is reports whether target is an *Error with the same Status (the sentinels).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// Unwrap returns the context error that caused the failure, if any.
func (e *Error) Unwrap() error { return e.ctxErr }

func sentinel(code C.int) *Error {
	return &Error{Status: int(code), Name: C.GoString(C.brg_status_name(code))}
}

// Sentinels for errors.Is; one per brg_status.
var (
	ErrInvalid     = sentinel(C.BRG_E_INVALID)
	ErrNoMem       = sentinel(C.BRG_E_NOMEM)
	ErrFull        = sentinel(C.BRG_E_FULL)
	ErrClosed      = sentinel(C.BRG_E_CLOSED)
	ErrTimeout     = sentinel(C.BRG_E_TIMEOUT)
	ErrCancelled   = sentinel(C.BRG_E_CANCELLED)
	ErrDNS         = sentinel(C.BRG_E_DNS)
	ErrConnect     = sentinel(C.BRG_E_CONNECT)
	ErrTLS         = sentinel(C.BRG_E_TLS)
	ErrIO          = sentinel(C.BRG_E_IO)
	ErrProtocol    = sentinel(C.BRG_E_PROTOCOL)
	ErrHTTP        = sentinel(C.BRG_E_HTTP)
	ErrTooLarge    = sentinel(C.BRG_E_TOO_LARGE)
	ErrBackend     = sentinel(C.BRG_E_BACKEND)
	ErrNotFound    = sentinel(C.BRG_E_NOTFOUND)
	ErrUnavailable = sentinel(C.BRG_E_UNAVAILABLE)
)

func statusText(code int) string { return C.GoString(C.brg_strerror(C.int(code))) }

func newError(code C.int, msg string) *Error {
	return &Error{Status: int(code), Name: C.GoString(C.brg_status_name(code)), Message: msg}
}

// ctxGrace is how long after the context's deadline the engine's deadline
// is set: the context's timer fires first, so a deadline always comes out as
// the context's error, never as whichever of the two timers won the race.
const ctxGrace = 20 * time.Millisecond

// withCtx ties a failure to the caller's context when that context is over
// (done, or its deadline passed even if its timer has not fired yet): the
// error then matches ctx.Err() under errors.Is. A cancel or timeout the
// context caused takes the context's cause as its status (DeadlineExceeded
// -> ErrTimeout, Canceled -> ErrCancelled), so the same cause always gives
// the same status; other engine errors (ErrHTTP, ...) keep theirs.
func withCtx(e *Error, ctx context.Context) *Error {
	err := ctx.Err()
	if err == nil {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			err = context.DeadlineExceeded
		}
	}
	if err == nil {
		return e
	}
	e.ctxErr = err
	if e.Status == int(C.BRG_E_CANCELLED) || e.Status == int(C.BRG_E_TIMEOUT) {
		code := C.int(C.BRG_E_CANCELLED)
		if errors.Is(err, context.DeadlineExceeded) {
			code = C.BRG_E_TIMEOUT
		}
		e.Status, e.Name = int(code), C.GoString(C.brg_status_name(code))
	}
	return e
}
