package console

import (
	"bytes"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// view is what every page's template gets; Data is the page's own.
type view struct {
	Session *appeals.Session
	Title   string
	// Flash says what the last action did; Error what went wrong.
	Flash, Error string
	Data         any
}

// enumValues is the contract's set name (appeals.EnumSet), the choices a
// form or a filter offers.
func enumValues(name string) []string {
	vals, ok := appeals.EnumSet(name)
	if !ok {
		panic("console: no enumeration " + name)
	}
	return vals
}

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"signin", "error", "decisions", "decision", "queue", "appeal", "audit", "entry", "policies", "policy", "reversal", "report", "decision-new", "appeals"}

var funcs = template.FuncMap{
	"when":  when,
	"iso":   iso,
	"label": label,
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"join": strings.Join,
	"add1": func(i int) int { return i + 1 },
	// dict builds a template's argument from key, value pairs.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errors.New("dict: keys are strings")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
	"staff": func(s *appeals.Session) bool {
		return s != nil && s.Actor.Role != docket.RoleAdvertiser
	},
	"isRole": func(s *appeals.Session, roles ...string) bool {
		if s == nil {
			return false
		}
		for _, r := range roles {
			if string(s.Actor.Role) == r {
				return true
			}
		}
		return false
	},
}

// when is a time as pages show it: UTC to the minute (the exact instant is
// in the <time> element's datetime attribute).
func when(v any) string {
	switch t := v.(type) {
	case time.Time:
		return t.UTC().Format("2 Jan 2006, 15:04 UTC")
	case *time.Time:
		if t != nil {
			return when(*t)
		}
	}
	return ""
}

func iso(v any) string {
	switch t := v.(type) {
	case time.Time:
		return t.UTC().Format(time.RFC3339)
	case *time.Time:
		if t != nil {
			return iso(*t)
		}
	}
	return ""
}

// label turns an enumeration value into words: ad_removal -> "Ad removal".
// It takes any of appeals' enumeration types, or a pointer to one (an
// appeal's outcome; nil is ""), as templates pass fields as they are.
func label(v any) string {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.String {
		return ""
	}
	s := strings.ReplaceAll(rv.String(), "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html"))
	}
	return pages
}

// render writes a page whole, or an error page when the template fails.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, v); err != nil {
		c.logger.ErrorContext(r.Context(), "console: render", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
