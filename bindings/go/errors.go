package barrage

/*
#include <barrage.h>
*/
import "C"

import (
	"context"
	"fmt"
)

// Error is every failure the engine reports. Status is the negative
// brg_status code, Name its BRG_E_* name, Message the engine's detail text.
// For ErrHTTP failures HTTPStatus and Body carry the server's answer.
//
// errors.Is(err, ErrTimeout) (and the other sentinels) compares Status.
// When the failure came from a context (cancel or deadline), errors.Is also
// matches context.Canceled or context.DeadlineExceeded.
type Error struct {
	Status     int
	Name       string
	Message    string
	HTTPStatus int
	Body       []byte
	Attempts   int
	ctxErr     error
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

// withCtx attaches the context's error when the engine's status is the one a
// context event produces (cancel -> CANCELLED, deadline -> TIMEOUT or CANCELLED).
func withCtx(e *Error, ctx context.Context) *Error {
	if err := ctx.Err(); err != nil &&
		(e.Status == int(C.BRG_E_CANCELLED) || e.Status == int(C.BRG_E_TIMEOUT)) {
		e.ctxErr = err
	}
	return e
}
