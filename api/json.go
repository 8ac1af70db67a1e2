package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/docket-dev/docket"
)

// MaxBody is the largest request body accepted (the contract's 1 MiB).
const MaxBody = 1 << 20

// readBody reads the whole body, refusing more than MaxBody and anything
// but JSON. An empty body is allowed only when optional.
func readBody(w http.ResponseWriter, r *http.Request, optional bool) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, slug: "too_large",
			detail: fmt.Sprintf("the body exceeds %d bytes", MaxBody)}
	}
	if err != nil {
		return nil, invalidField("body", "could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 && optional {
		return body, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, &httpError{status: http.StatusUnsupportedMediaType, slug: "unsupported_media_type",
			detail: "send the body as application/json"}
	}
	return body, nil
}

// decodeJSON strictly decodes one JSON object: unknown fields, wrong-case
// names, duplicate keys, NUL bytes, invalid UTF-8, over-long arrays (see
// strict.go) and wrong types are reported with the field's name.
func decodeJSON(body []byte, v any) error {
	sc, err := scanBody(body, reflect.TypeOf(v).Elem())
	switch {
	case errors.Is(err, errTooDeep):
		return invalidField("body", fmt.Sprintf("nests deeper than %d levels", maxDepth))
	case err != nil:
		return jsonError(err)
	case sc != nil && sc.errs.count() > 0:
		if n := sc.errs.count(); n > docket.MaxFieldErrors {
			// A hostile body: decoding what is left would only cost. The
			// first entry says so, and keeps validation of the undecoded
			// (empty) value from adding errors that are not true.
			e := &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields", More: sc.errs.more,
				Fields: append([]docket.FieldError{{Field: "body",
					Message: fmt.Sprintf("has %d invalid fields; nothing else was checked", n)}}, sc.errs.fields...)}
			return e
		}
		return fieldErrors(body, v, sc)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) || strings.HasPrefix(err.Error(), "json: unknown field ") {
			return fieldErrors(body, v, nil)
		}
		return jsonError(err)
	}
	// dec.More is false before a stray '}' or ']', so what follows the
	// value is checked byte by byte; and a top-level null decodes into
	// nothing without error, so the value is checked to be an object.
	// Only JSON's own whitespace may surround it (bytes.TrimSpace would
	// also take \v, \f and U+0085).
	const ws = " \t\r\n"
	rest := bytes.Trim(body[dec.InputOffset():], ws)
	if trimmed := bytes.TrimLeft(body, ws); len(rest) > 0 || len(trimmed) == 0 || trimmed[0] != '{' {
		return invalidField("body", "must hold exactly one JSON object")
	}
	return nil
}

// fieldErrors names every field of an object that does not decode into v,
// not only the first: each member is decoded alone into a fresh value.
// Members that decode are decoded into v too, so validation can go on.
// The members the strict pass sc (if any) named are left out, and its
// errors come first.
func fieldErrors(body []byte, v any, sc *strictScan) error {
	var fields []docket.FieldError
	more := 0
	if sc != nil {
		fields, more = sc.errs.fields, sc.errs.more
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
			Fields: append(fields, docket.FieldError{Field: "body", Message: "is not a valid JSON object"}), More: more}
	}
	t := reflect.TypeOf(v).Elem()
	scanned := len(fields)
	for name, raw := range members {
		if sc != nil && sc.bad[name] {
			continue
		}
		one, _ := json.Marshal(map[string]json.RawMessage{name: raw})
		dec := json.NewDecoder(bytes.NewReader(one))
		dec.DisallowUnknownFields()
		if err := dec.Decode(reflect.New(t).Interface()); err != nil {
			var de *docket.Error
			if errors.As(jsonError(err), &de) {
				fields = append(fields, de.Fields...)
			}
			continue
		}
		_ = json.Unmarshal(one, v)
	}
	rest := fields[scanned:]
	sort.Slice(rest, func(i, j int) bool { return rest[i].Field < rest[j].Field })
	return &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields", Fields: fields, More: more}
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalidField("body", fmt.Sprintf("is not valid JSON (at byte %d)", syn.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		t := typ.Type
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		return invalidField(field, "must be "+jsonKind(t.Kind().String()))
	case errors.Is(err, io.EOF):
		return invalidField("body", "is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidField("body", "ends before the JSON object does")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalidField(name, "is not a known field")
	}
	return invalidField("body", "is not valid JSON")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}

// writeJSON writes v with status. marshal is shared with idempotent replies
// so a replay is byte-for-byte the first answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("api: encode: %w", err)
	}
	return append(b, '\n'), nil
}
