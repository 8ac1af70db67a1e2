package appeals

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
)

// Each closed set is declared once (enum.go); a field's `enumSet` tag names
// it for /openapi.json. This test holds every tag to a set that exists,
// and every tagged input field to its set: Validate accepts each value of
// the set the tag names, and refuses one outside it.
func TestEnumSetTagsNameTheValidatorsSets(t *testing.T) {
	t.Parallel()
	refused := func(in any, field string) bool {
		var e *docket.Error
		if !errors.As(in.(interface{ Validate() error }).Validate(), &e) {
			return false
		}
		for _, f := range e.Fields {
			if f.Field == field || strings.HasPrefix(f.Field, field+"[") {
				return true
			}
		}
		return false
	}
	inputs := map[reflect.Type]bool{}
	for _, in := range []any{DecisionInput{}, ResolveInput{}, NoticeInput{}, PolicyInput{}} {
		inputs[reflect.TypeOf(in)] = true
	}
	checked, validated := 0, 0
	for _, v := range []any{Decision{}, DecisionInput{}, Appeal{}, ResolveInput{}, NoticeInput{}, PolicyInput{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			set, ok := f.Tag.Lookup("enumSet")
			if !ok {
				continue
			}
			vals, known := EnumSet(set)
			require.True(t, known, "%s.%s names no set %q", typ.Name(), f.Name, set)
			require.NotEmpty(t, vals)
			checked++
			if !inputs[typ] {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			with := func(val string) any {
				x := reflect.New(typ).Elem()
				switch fv := x.Field(i); fv.Kind() {
				case reflect.String:
					fv.SetString(val)
				case reflect.Slice:
					fv.Set(reflect.ValueOf([]string{val}).Convert(fv.Type()))
				default:
					t.Fatalf("%s.%s: enumSet on a %s", typ.Name(), f.Name, fv.Kind())
				}
				return x.Interface()
			}
			for _, val := range vals {
				require.False(t, refused(with(val), name), "%s.%s refuses %q of set %s", typ.Name(), f.Name, val, set)
			}
			require.True(t, refused(with("not-in-any-set"), name), "%s.%s accepts a value outside set %s", typ.Name(), f.Name, set)
			validated++
		}
	}
	require.Equal(t, 17, checked)
	require.Equal(t, 9, validated)
}
