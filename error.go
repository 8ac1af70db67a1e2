package docket

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies a domain error; api maps each code to one HTTP status.
type Code string

const (
	Invalid      Code = "invalid"      // the input breaks a rule of its shape
	NotFound     Code = "not_found"    // no such record, or not the caller's to see
	Conflict     Code = "conflict"     // the record's state forbids the change
	Forbidden    Code = "forbidden"    // the caller's role may never do this
	Unauthorized Code = "unauthorized" // no valid credentials
	KeyReused    Code = "key_reused"   // an idempotency key reused with another request
	Unavailable  Code = "unavailable"  // a dependency (the database) is down or not answering in time; retry
	Internal     Code = "internal"
)

// FieldError names one bad input field.
type FieldError struct {
	Field   string `json:"field" required:"true"`
	Message string `json:"message" required:"true"`
}

// Error is the one error type the domain returns for expected failures.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	// More counts field errors found beyond Fields but not kept, so that
	// a hostile body costs a bounded answer (see MaxFieldErrors).
	More int
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return string(e.Code) + ": " + e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return string(e.Code) + ": " + e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or Internal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MaxFieldErrors bounds the field errors one answer lists; api adds one
// entry saying how many more there were.
const MaxFieldErrors = 100

// Problems collects field errors while validating.
type Problems []FieldError

// Add records a bad field.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Merge adds the fields of another validation's error, if any.
func (p *Problems) Merge(err error) {
	var e *Error
	if errors.As(err, &e) {
		*p = append(*p, e.Fields...)
	}
}

// Err returns an Invalid error naming every field, or nil.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Code: Invalid, Message: "the request has invalid fields", Fields: p}
}
