package api

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// op documents one route for /openapi.json. Schemas come from the Go types
// the handlers really decode and encode, so the document cannot drift from
// the fields; the roles are the route table's (routes.go), and routes.go
// and ops are checked against each other in tests,
// and every request and response the tests make is checked against the
// document (internal/oapitest).
type op struct {
	Summary string
	Body    any // the request body's type, or nil
	// OptionalBody: the write takes no input, but accepts an empty body or
	// Body (an empty object) for clients that always send one.
	OptionalBody bool
	Reply        any // the success reply's type, or nil
	Status       int // the success status
	// SameReply are other statuses answered with Reply's schema and
	// content types (200 for an unchanged policy; 503 of /readyz).
	SameReply []int
	// NoContent are other success statuses without a body (204 of a claim).
	NoContent []int
	// Content are the reply's media types, when not application/json;
	// application/json among them takes Reply, application/x-ndjson Line
	// (the schema of one line), any other a string.
	Content []string
	Line    any
	Headers []string // headers of the success reply, named in replyHeaders
	Query   []string // query parameters, described in queryParam
	Errors  []int    // other statuses the route answers
}

// replyHeaders describes the headers a reply may carry.
var replyHeaders = map[string]map[string]any{
	"Location": {"description": "The path of the record made", "schema": map[string]any{"type": "string"}},
	"Content-Disposition": {"description": "attachment, with a file name",
		"schema": map[string]any{"type": "string"}},
	"Cache-Control": {"description": "no-cache: the answer changes as the log grows", "schema": map[string]any{"type": "string"}},
	"Idempotent-Replayed": {"description": "true when this is the stored reply to an earlier request with the same Idempotency-Key",
		"schema": map[string]any{"type": "string", "enum": []string{"true"}}},
	"Retry-After": {"description": "seconds to wait before trying again",
		"schema": map[string]any{"type": "integer", "minimum": 1}},
	"WWW-Authenticate": {"description": "the Bearer challenge", "schema": map[string]any{"type": "string"}},
	RequestIDHeader: {"description": "the request's id, also on its log lines: the client's own when usable (1 to 128 of A-Z a-z 0-9 . _ : -), else a new one",
		"schema": map[string]any{"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}},
}

// namedPatterns are the `pattern` tags' values: the shapes the validators
// match, by name.
var namedPatterns = map[string]string{
	"platform_id": appeals.PlatformIDPattern,
	"policy_code": appeals.PolicyCodePattern,
}

// enumSet returns the values of the set an `enumSet` tag names: the
// domain's (appeals.EnumSet), or the bundle's wire constants (audit).
// Every set is declared once, with the constants of its values.
func enumSet(name string) []string {
	switch name {
	case "bundle_format":
		return []string{audit.BundleFormat}
	case "bundle_mode":
		return []string{audit.BundleFull, audit.BundleProofs}
	}
	vals, ok := appeals.EnumSet(name)
	if !ok {
		panic("api: no enumeration " + name)
	}
	return vals
}

// queryParam describes the query parameter name of route pattern: the
// same bounds, sets and shapes the handlers check.
func queryParam(pattern, name string) map[string]any {
	str := func(desc string) map[string]any {
		return map[string]any{"schema": map[string]any{"type": "string"}, "description": desc}
	}
	index := func(desc string) map[string]any {
		return map[string]any{"schema": map[string]any{"type": "integer", "minimum": 0}, "description": desc}
	}
	enum := func(desc string, vals ...string) map[string]any {
		return map[string]any{"schema": map[string]any{"type": "string", "enum": vals}, "description": desc}
	}
	pat := func(desc, p string) map[string]any {
		return map[string]any{"schema": map[string]any{"type": "string", "pattern": p}, "description": desc}
	}
	period := "an RFC 3339 time, or a date YYYY-MM-DD (its midnight UTC)"
	switch pattern + "?" + name {
	case "GET /v1/exports/audit?from", "GET /v1/exports/audit?to", "GET /v1/exports/bundle?from", "GET /v1/exports/bundle?to":
		return str("a leaf index (digits) or " + period + " of the entries' own time; to is excluded")
	case "GET /v1/exports/audit?format":
		return enum("jsonl (the default) or csv", "jsonl", "json", "csv")
	case "GET /v1/exports/audit?type", "GET /v1/exports/bundle?type":
		alt := "(" + strings.Join(entryTypes, "|") + ")"
		alt = strings.ReplaceAll(alt, ".", `\.`)
		return map[string]any{"description": "entry types, repeated or comma-separated", "explode": true, "style": "form",
			"schema": map[string]any{"type": "array", "items": map[string]any{"type": "string",
				"pattern": "^" + alt + "(," + alt + ")*$"}}}
	case "GET /v1/reports/appeals?format":
		return enum("json (the default) or csv", "json", "csv")
	case "GET /v1/audit/proofs/consistency?from", "GET /v1/audit/proofs/consistency?to":
		return index("a tree size")
	}
	switch name {
	case "from", "to":
		return str(period + "; to is excluded")
	case "limit":
		return map[string]any{"description": "items per page", "schema": map[string]any{"type": "integer",
			"minimum": 1, "maximum": appeals.MaxLimit, "default": appeals.DefaultLimit}}
	case "cursor":
		return str("next_cursor of the page before")
	case "advertiser_id", "decision_id":
		return pat("", appeals.PlatformIDPattern)
	case "policy_code":
		return pat("", appeals.PolicyCodePattern)
	case "action":
		return enum("", enumSet("action")...)
	case "status":
		return enum("", enumSet("decision_status")...)
	case "state":
		return enum("", enumSet("appeal_state")...)
	case "overdue":
		return map[string]any{"schema": map[string]any{"type": "boolean"}, "description": "only open appeals past due_at"}
	case "start":
		return index("the first leaf index")
	case "index":
		return index("a leaf index")
	case "size":
		return index("a tree size")
	}
	panic("api: query parameter " + name + " of " + pattern + " is not described")
}

// pathParam describes a path wildcard.
func pathParam(name string) map[string]any {
	switch name {
	case "code":
		return map[string]any{"type": "string", "pattern": appeals.PolicyCodePattern}
	case "n":
		return map[string]any{"type": "integer", "minimum": 1}
	case "index":
		return map[string]any{"type": "integer", "minimum": 0}
	}
	return map[string]any{"type": "string", "pattern": appeals.PlatformIDPattern}
}

// errorText says what each error status means here.
var errorText = map[int]string{
	400: "Invalid parameters or body; errors names each bad field",
	401: "No token, or not a valid one",
	403: "The role may never do this",
	404: "Not found, or not the caller's",
	409: "The record's state does not allow this",
	413: "The body is larger than 1 MiB",
	415: "The body is not application/json",
	422: "The Idempotency-Key was used before with a different body",
	429: "Too many failed authentications from this client address, or too many requests with this token",
	500: "An internal error; it has been logged",
	503: "A dependency is not running, or the database is down or did not answer within the request's bound (DOCKET_DB_TIMEOUT); nothing was written: retry after Retry-After seconds",
}

// openAPIDocument builds the OpenAPI 3.1 document from ops.
func openAPIDocument(ops map[string]op, version string) ([]byte, error) {
	if version == "" {
		version = "dev"
	}
	g := &schemaGen{defs: map[string]any{}}
	paths := map[string]map[string]any{}
	rolesOf := routeRoles()
	for pattern, o := range ops {
		method, path, _ := strings.Cut(pattern, " ")
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		d := opDoc{g: g, o: o, pattern: pattern, method: method, path: path, roles: rolesOf[pattern],
			write:   strings.HasPrefix(path, "/v1/") && (method == "POST" || method == "PUT"),
			checked: path != "/metrics"}
		paths[path][strings.ToLower(method)] = d.operation()
	}
	g.schema(reflect.TypeOf(Problem{}))
	var tags []any
	for _, t := range []string{"health", "policies", "decisions", "appeals", "audit", "exports", "reports"} {
		tags = append(tags, map[string]any{"name": t, "description": tagText[t]})
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Docket", "version": version,
			"description": "The system of record for ad-policy enforcement: decisions, appeals, and a tamper-evident audit log.",
			"license":     map[string]any{"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}},
		"servers": []any{map[string]any{"url": "/", "description": "the server that serves this document"}},
		"tags":    tags,
		"paths":   paths,
		"components": map[string]any{
			"schemas":         g.defs,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// opDoc documents one route: its parameters, security, body and every
// reply it can give.
type opDoc struct {
	g            *schemaGen
	o            op
	pattern      string
	method, path string
	roles        []docket.Role // nil: public
	write        bool          // a /v1 POST or PUT: takes Idempotency-Key
	checked      bool          // a route of checkedMux: path and query vetted
}

func (d opDoc) operation() map[string]any {
	operation := map[string]any{"summary": d.o.Summary, "operationId": operationID(d.method, d.path),
		"tags": []string{tagOf(d.path)}}
	if params := d.parameters(); len(params) > 0 {
		operation["parameters"] = params
	}
	if d.roles == nil {
		operation["security"] = []any{}
	} else {
		names := make([]string, len(d.roles))
		for i, r := range d.roles {
			names[i] = string(r)
		}
		operation["x-roles"] = names
		operation["description"] = "Roles: " + strings.Join(names, ", ") + "."
	}
	if d.o.Body != nil {
		operation["requestBody"] = map[string]any{"required": !d.o.OptionalBody, "content": map[string]any{
			"application/json": map[string]any{"schema": d.g.request(reflect.TypeOf(d.o.Body))}}}
	}
	operation["responses"] = d.responses()
	return operation
}

// parameters: the path's, the query's, and Idempotency-Key on writes.
func (d opDoc) parameters() []any {
	params := []any{}
	for _, seg := range strings.Split(d.path, "/") {
		if strings.HasPrefix(seg, "{") {
			name := strings.Trim(seg, "{}")
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": pathParam(name)})
		}
	}
	for _, q := range d.o.Query {
		p := queryParam(d.pattern, q)
		p["name"], p["in"] = q, "query"
		if p["description"] == "" {
			delete(p, "description")
		}
		params = append(params, p)
	}
	if d.write {
		params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header",
			"description": "the same key and body within 24 h returns the first reply again and changes nothing",
			"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}})
	}
	return params
}

// responses: the successes, then every error the route can give, each
// with the request id; and the 431 net/http answers itself.
func (d opDoc) responses() map[string]any {
	responses := map[string]any{}
	content := d.content()
	success := func(code int, withContent bool) {
		responses[itoa(code)] = d.success(code, withContent, content)
	}
	success(d.o.Status, true)
	for _, code := range d.o.SameReply {
		success(code, true)
	}
	for _, code := range d.o.NoContent {
		success(code, false)
	}
	for _, code := range d.errors() {
		if _, done := responses[itoa(code)]; done {
			continue
		}
		resp := map[string]any{"description": errorText[code],
			"content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
		switch code {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			resp["headers"] = map[string]any{"Retry-After": withRequired(replyHeaders["Retry-After"])}
		case http.StatusUnauthorized:
			resp["headers"] = map[string]any{"WWW-Authenticate": replyHeaders["WWW-Authenticate"]}
		}
		responses[itoa(code)] = resp
	}
	// Every reply of ServeHTTP carries its request id.
	for _, r := range responses {
		resp := r.(map[string]any)
		h, _ := resp["headers"].(map[string]any)
		if h == nil {
			h = map[string]any{}
			resp["headers"] = h
		}
		h[RequestIDHeader] = replyHeaders[RequestIDHeader]
	}
	// net/http answers 431 itself, in text/plain, before any route
	// runs, when the request line and headers exceed MaxHeaderBytes.
	responses["431"] = map[string]any{"description": "The request line and headers are larger than the server takes (64 KiB by default)",
		"content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}
	return responses
}

// content is the success replies' media types and schemas.
func (d opDoc) content() map[string]any {
	content := map[string]any{}
	types := d.o.Content
	if len(types) == 0 && d.o.Reply != nil {
		types = []string{"application/json"}
	}
	for _, ct := range types {
		switch ct {
		case "application/json":
			content[ct] = map[string]any{"schema": d.g.schema(reflect.TypeOf(d.o.Reply))}
		case "application/x-ndjson":
			// The schema is one line's (OpenAPI 3.1 has no itemSchema).
			content[ct] = map[string]any{"schema": d.g.schema(reflect.TypeOf(d.o.Line))}
		default:
			content[ct] = map[string]any{"schema": map[string]any{"type": "string"}}
		}
	}
	return content
}

func (d opDoc) success(code int, withContent bool, content map[string]any) map[string]any {
	resp := map[string]any{"description": http.StatusText(code)}
	if _, ok := content["application/x-ndjson"]; ok && withContent {
		resp["description"] = "OK; application/x-ndjson is one JSON object per line, each of the schema given"
	}
	if withContent && len(content) > 0 {
		resp["content"] = content
	}
	headers := map[string]any{}
	if code == http.StatusServiceUnavailable {
		headers["Retry-After"] = withRequired(replyHeaders["Retry-After"])
	}
	if code < 300 {
		for _, h := range d.o.Headers {
			headers[h] = replyHeaders[h]
		}
		if d.write {
			headers["Idempotent-Replayed"] = replyHeaders["Idempotent-Replayed"]
		}
	}
	if len(headers) > 0 {
		resp["headers"] = headers
	}
	return resp
}

// errors lists the error statuses the route can answer: its own, and
// those every route of its kind can.
func (d opDoc) errors() []int {
	errs := slices.Clone(d.o.Errors)
	if d.checked {
		errs = append(errs, 400)
	}
	if strings.HasPrefix(d.path, "/v1/") {
		errs = append(errs, 500, 503) // 503: the database is unavailable
	}
	if d.roles != nil {
		errs = append(errs, 401, 403, 429)
	}
	if d.o.Body != nil {
		errs = append(errs, 400, 413, 415)
	}
	if d.write {
		errs = append(errs, 400, 422)
	}
	return errs
}

var tagText = map[string]string{
	"health":    "Liveness, readiness, metrics and this document",
	"policies":  "Versioned policy texts",
	"decisions": "Enforcement decisions and their statements of reasons",
	"appeals":   "Appeals of decisions and their review",
	"audit":     "The tamper-evident audit log: entries, checkpoints and proofs",
	"exports":   "Bulk exports of the audit log and of statements of reasons",
	"reports":   "Transparency figures",
}

// tagOf groups a path by its first segment under /v1.
func tagOf(path string) string {
	seg := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")[0]
	switch {
	case !strings.HasPrefix(path, "/v1/"):
		return "health"
	case seg == "appeals" || strings.HasSuffix(path, "/appeals") || strings.HasSuffix(path, "/reversals"):
		return "appeals"
	}
	return seg
}

func withRequired(h map[string]any) map[string]any {
	out := maps.Clone(h)
	out["required"] = true
	return out
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

// request is the schema of a request body's type: besides what schema
// says, the fields its Validate reports as missing in the zero value are
// required, so the document requires what the validator does.
func (g *schemaGen) request(t reflect.Type) map[string]any {
	ref := g.schema(t)
	def, ok := g.defs[schemaName(t)].(map[string]any)
	if !ok {
		return ref
	}
	v, ok := reflect.Zero(t).Interface().(interface{ Validate() error })
	if !ok {
		return ref
	}
	var de *docket.Error
	if !errors.As(v.Validate(), &de) {
		return ref
	}
	props := def["properties"].(map[string]any)
	var req []string
	for _, f := range de.Fields {
		p, known := props[f.Field].(map[string]any)
		if !known || !strings.HasPrefix(f.Message, "is required") {
			continue
		}
		req = append(req, f.Field)
		// A required field holds something: null and "" count as missing.
		if ty, ok := p["type"].([]string); ok && len(ty) == 2 && ty[1] == "null" {
			p["type"] = ty[0]
		}
		switch p["type"] {
		case "string":
			if _, set := p["enum"]; !set {
				p["minLength"] = 1
			}
		case "array":
			p["minItems"] = 1
		}
	}
	slices.Sort(req)
	if len(req) > 0 {
		def["required"] = req
	}
	return ref
}

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
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		// encoding/json writes a nil slice as null.
		return map[string]any{"type": []string{"array", "null"}, "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if _, done := g.defs[name]; !done {
			g.defs[name] = map[string]any{} // a placeholder stops recursion
			props := map[string]any{}
			var req []string
			g.fields(t, props, &req)
			// The strict decoder refuses unknown fields at every level,
			// and encoding/json writes no others.
			def := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
			if len(req) > 0 {
				def["required"] = req
			}
			g.defs[name] = def
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// fields adds t's JSON fields, flattening embedded structs as encoding/json
// does; fields tagged required:"true" (always present in a reply) are
// added to req.
func (g *schemaGen) fields(t reflect.Type, props map[string]any, req *[]string) {
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
				g.fields(ft, props, req)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		if f.Tag.Get("required") == "true" {
			*req = append(*req, name)
		}
		props[name] = g.field(f)
	}
}

// field is the schema of a struct field: its type's, with what its tags
// say of its value (the items', for an array) and of the field itself.
func (g *schemaGen) field(f reflect.StructField) map[string]any {
	fs := g.schema(f.Type)
	// What the value itself must be: the items' for an array.
	target := fs
	if ty, _ := fs["type"].([]string); len(ty) > 0 && ty[0] == "array" {
		target = fs["items"].(map[string]any)
	}
	// A field's `enumSet` tag names the set the validator checks it
	// against, so the document lists the same values.
	if set := f.Tag.Get("enumSet"); set != "" {
		target["enum"] = enumSet(set)
	}
	if p := f.Tag.Get("pattern"); p != "" {
		target["pattern"] = namedPatterns[p]
	}
	if v := f.Tag.Get("format"); v != "" {
		target["format"] = v
	}
	if n, err := strconv.Atoi(f.Tag.Get("minimum")); err == nil {
		target["minimum"] = n
	}
	// appeals' maxLength test keeps these bounds the validators'.
	if n, err := strconv.Atoi(f.Tag.Get("maxLength")); err == nil {
		target["maxLength"] = n
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
	if f.Tag.Get("uniqueItems") == "true" {
		fs["uniqueItems"] = true
	}
	return fs
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
	if name == "" && t.Kind() == reflect.Struct && t.NumField() == 0 {
		name = "Empty"
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
