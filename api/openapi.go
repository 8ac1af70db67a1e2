package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/docket-dev/docket/appeals"
)

// op documents one route for /openapi.json. Schemas come from the Go types
// the handlers really decode and encode, so the document cannot drift from
// the fields; routes.go and ops are checked against each other in tests.
type op struct {
	Summary string
	Roles   []appeals.Role // nil: public
	Body    any            // the request body's type, or nil
	Reply   any            // the success reply's type, or nil
	Status  int            // the success status
	Text    bool           // the reply is text/plain
	Query   []string       // query parameters
	Errors  []int          // other statuses worth naming
}

// openAPIDocument builds the OpenAPI 3.1 document from ops.
func openAPIDocument(ops map[string]op, version string) ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	paths := map[string]map[string]any{}
	for pattern, o := range ops {
		method, path, _ := strings.Cut(pattern, " ")
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		operation := map[string]any{"summary": o.Summary, "operationId": operationID(method, path)}
		var params []any
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true,
					"schema": map[string]any{"type": "string"}})
			}
		}
		for _, q := range o.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": map[string]any{"type": "string"}})
		}
		if len(params) > 0 {
			operation["parameters"] = params
		}
		if o.Roles == nil {
			operation["security"] = []any{}
		} else {
			roles := make([]string, len(o.Roles))
			for i, r := range o.Roles {
				roles[i] = string(r)
			}
			operation["x-roles"] = roles
			operation["description"] = "Roles: " + strings.Join(roles, ", ") + "."
		}
		if strings.HasPrefix(path, "/v1/") && (method == "POST" || method == "PUT") {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]any{"type": "string", "maxLength": 255}})
			operation["parameters"] = params
		}
		if o.Body != nil {
			operation["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(o.Body))}}}
		}
		responses := map[string]any{}
		ok := map[string]any{"description": http.StatusText(o.Status)}
		switch {
		case o.Text:
			ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		case o.Reply != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(o.Reply))}}
		}
		responses[itoa(o.Status)] = ok
		errs := o.Errors
		if o.Roles != nil {
			errs = append(errs, 401, 403, 429)
		}
		if o.Body != nil {
			errs = append(errs, 400, 413, 415, 422)
		}
		for _, code := range errs {
			resp := map[string]any{"description": http.StatusText(code),
				"content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
			if code == http.StatusTooManyRequests {
				resp["description"] = "Too many failed authentications from this client address, or too many requests with this token"
				resp["headers"] = map[string]any{"Retry-After": map[string]any{
					"description": "seconds to wait before trying again", "schema": map[string]any{"type": "integer", "minimum": 1}}}
			}
			responses[itoa(code)] = resp
		}
		operation["responses"] = responses
		paths[path][strings.ToLower(method)] = operation
	}
	g.schema(reflect.TypeOf(Problem{}))
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Docket", "version": version,
			"description": "The system of record for ad-policy enforcement: decisions, appeals, and a tamper-evident audit log."},
		"paths": paths,
		"components": map[string]any{
			"schemas":         g.defs,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(path, "/") {
		seg = strings.Trim(seg, "{}")
		if seg == "" || seg == "v1" {
			continue
		}
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// schemaGen turns Go types into JSON Schema, naming structs in components.
type schemaGen struct{ defs map[string]any }

var timeType = reflect.TypeOf(time.Time{})

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		nullable = true
	}
	s := g.base(t)
	if nullable {
		if ty, ok := s["type"].(string); ok {
			s["type"] = []string{ty, "null"}
		}
	}
	return s
}

func (g *schemaGen) base(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeOf(json.RawMessage{}):
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if _, done := g.defs[name]; !done {
			g.defs[name] = map[string]any{} // a placeholder stops recursion
			props := map[string]any{}
			g.fields(t, props)
			g.defs[name] = map[string]any{"type": "object", "properties": props}
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// fields adds t's JSON fields, flattening embedded structs as encoding/json does.
func (g *schemaGen) fields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.fields(ft, props)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		fs := g.schema(f.Type)
		// Domain types carry their enumerations in an `enum` tag, so the
		// document lists the same values the validator accepts.
		if enum := f.Tag.Get("enum"); enum != "" {
			vals := strings.Split(enum, ",")
			if fs["type"] == "array" {
				fs["items"] = map[string]any{"type": "string", "enum": vals}
			} else {
				fs["enum"] = vals
			}
		}
		// A `doc` tag says what a field means where the type cannot, such
		// as how it reads to an advertiser.
		if doc := f.Tag.Get("doc"); doc != "" {
			fs["description"] = doc
		}
		// The strict body pass (strict.go) enforces the same bound.
		if n := f.Tag.Get("maxItems"); n != "" {
			fs["maxItems"], _ = strconv.Atoi(n)
		}
		props[name] = fs
	}
}

func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 { // generic: Page[appeals.Decision]
		inner := name[i+1 : len(name)-1]
		if j := strings.LastIndexByte(inner, '.'); j >= 0 {
			inner = inner[j+1:]
		}
		name = name[:i] + "Of" + inner
	}
	if name == "" {
		name = "Anonymous"
	}
	return name
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openAPIDoc)
}
