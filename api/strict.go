package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/docket-dev/docket"
)

// A strict pre-pass over a body's JSON tokens, before encoding/json sees
// it. encoding/json matches field names case-insensitively, lets the last
// of duplicate keys win, turns invalid UTF-8 into U+FFFD and decodes
// \u0000 into a NUL that Postgres refuses; and a body of 340,000 evidence
// items costs 340,000 items decoded and checked. The pass refuses all of
// that by name, at every nesting level, in work bounded by the body's
// size: keys are checked exactly against the target type's json tags, an
// array longer than its field's maxItems tag (maxArray untagged) stops the
// pass, and past MaxFieldErrors errors are only counted.

// maxDepth bounds how deeply a body may nest.
const maxDepth = 32

// maxArray bounds an array whose field has no maxItems tag.
const maxArray = 1000

// maxFieldName bounds a field's name as an error repeats it: the name is
// the caller's, and so is its length.
const maxFieldName = 80

var (
	errTooDeep = errors.New("api: body nests too deep")
	errStop    = errors.New("api: strict pass stopped")
)

// fieldErrs collects at most MaxFieldErrors field errors and counts the rest.
type fieldErrs struct {
	fields []docket.FieldError
	more   int
}

func (f *fieldErrs) add(field, msg string) {
	if len(f.fields) >= docket.MaxFieldErrors {
		f.more++
		return
	}
	f.fields = append(f.fields, docket.FieldError{Field: printable(field), Message: msg})
}

func (f *fieldErrs) count() int { return len(f.fields) + f.more }

func (f *fieldErrs) err() error {
	if f.count() == 0 {
		return nil
	}
	return &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields", Fields: f.fields, More: f.more}
}

// printable shortens a caller-chosen name and makes it valid UTF-8.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxFieldName {
		cut := maxFieldName
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// jsonField is one field a struct decodes: its type and array bound.
type jsonField struct {
	typ      reflect.Type
	maxItems int
}

// jsonFields maps the exact json names of t's fields, flattening embedded
// structs as encoding/json does.
func jsonFields(t reflect.Type, out map[string]jsonField) map[string]jsonField {
	if out == nil {
		out = map[string]jsonField{}
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if ft := deref(f.Type); f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			jsonFields(ft, out)
			continue
		}
		if name == "" {
			name = f.Name
		}
		jf := jsonField{typ: f.Type, maxItems: maxArray}
		if n, err := strconv.Atoi(f.Tag.Get("maxItems")); err == nil && n > 0 {
			jf.maxItems = n
		}
		out[name] = jf
	}
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// strictScan is one pass over a body.
type strictScan struct {
	dec  *json.Decoder
	body []byte
	errs fieldErrs
	// bad names the top-level members an error names: the decode that
	// follows leaves them out, so their other problems are not reported
	// twice and a wrong-case key cannot fill the field it resembles.
	bad map[string]bool
	// stopped is set when the pass gave up early (an array over its bound):
	// what it has found is the answer.
	stopped bool
}

// scanBody runs the strict pass over body for a value of type t. It
// returns nil, nil when body is not a JSON object, which the decoder then
// reports; a syntax error is returned as the decoder's own.
func scanBody(body []byte, t reflect.Type) (*strictScan, error) {
	s := &strictScan{dec: json.NewDecoder(bytes.NewReader(body)), body: body, bad: map[string]bool{}}
	s.dec.UseNumber()
	tok, err := s.dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil
	}
	switch err := s.object(t, "", "", 1); {
	case errors.Is(err, errStop):
		s.stopped = true
	case err != nil:
		return nil, err
	}
	return s, nil
}

// token reads one token and reports whether its raw bytes are valid UTF-8
// (the decoder replaces invalid bytes silently).
func (s *strictScan) token() (json.Token, bool, error) {
	start := s.dec.InputOffset()
	tok, err := s.dec.Token()
	if err != nil {
		return nil, false, err
	}
	if _, ok := tok.(string); !ok {
		return tok, true, nil
	}
	return tok, utf8.Valid(s.body[start:s.dec.InputOffset()]), nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// object reads the members of an object up to its '}'. t is the type it
// decodes into; nil when nothing decodes it (an unknown field's value),
// whose content is then only read past. top is the top-level member the
// object belongs to ("" at the top).
func (s *strictScan) object(t reflect.Type, path, top string, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	st := deref(t)
	var fields map[string]jsonField
	if st != nil && st.Kind() == reflect.Struct {
		fields = jsonFields(st, nil)
	}
	// seen holds known names only, so it stays as small as the struct.
	seen := map[string]bool{}
	for s.dec.More() {
		tok, valid, err := s.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		field, mtop := join(path, key), top
		if top == "" {
			mtop = key
		}
		var ft reflect.Type
		limit := maxArray
		switch {
		case t == nil:
		case !valid || strings.IndexByte(key, 0) >= 0:
			s.fail(mtop, field, "is a field name that is not valid UTF-8 or holds NUL bytes")
		case st.Kind() == reflect.Map:
			ft = st.Elem()
		case fields == nil:
			ft = st // an object where a scalar belongs: the decoder names it
		default:
			f, ok := fields[key]
			switch {
			case !ok:
				s.fail(mtop, field, unknownField(fields, key))
			case seen[key]:
				s.fail(mtop, field, "appears more than once")
			default:
				seen[key] = true
				ft, limit = f.typ, f.maxItems
			}
		}
		if err := s.value(ft, limit, field, mtop, depth); err != nil {
			return err
		}
	}
	_, err := s.dec.Token() // '}'
	return err
}

// unknownField says why key is not a field, naming the field it differs
// from only in case.
func unknownField(fields map[string]jsonField, key string) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("is not a known field (names are case-sensitive: %q)", name)
		}
	}
	return "is not a known field"
}

// fail records a problem of the top-level member top.
func (s *strictScan) fail(top, field, msg string) {
	s.bad[top] = true
	s.errs.add(field, msg)
}

// value reads one value, of type t (nil: not checked, only read past).
func (s *strictScan) value(t reflect.Type, limit int, path, top string, depth int) error {
	tok, valid, err := s.token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return s.object(t, path, top, depth+1)
		}
		return s.array(t, limit, path, top, depth+1)
	case string:
		if t != nil && (!valid || strings.IndexByte(v, 0) >= 0) {
			s.fail(top, path, docket.DirtyMessage)
		}
	}
	return nil
}

// array reads the items of an array up to its ']'; past limit items it
// stops the pass, which has its answer.
func (s *strictScan) array(t reflect.Type, limit int, path, top string, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	var et reflect.Type
	if st := deref(t); st != nil {
		switch st.Kind() {
		case reflect.Slice, reflect.Array:
			et = st.Elem()
		default:
			et = st // an array where a scalar belongs: the decoder names it
		}
	}
	for n := 0; s.dec.More(); n++ {
		if n == limit && t != nil {
			s.fail(top, path, fmt.Sprintf("must have at most %d items", limit))
			return errStop
		}
		if err := s.value(et, maxArray, fmt.Sprintf("%s[%d]", path, n), top, depth); err != nil {
			return err
		}
	}
	_, err := s.dec.Token() // ']'
	return err
}
