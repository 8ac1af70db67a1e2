package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/docket-dev/docket"

// layers says which of the module's packages each package may import
// (paths relative to the module; "." is the root package docket, the
// shared vocabulary, which imports nothing of the module; "internal/*" is
// every internal package).
// Tests may import, besides, the package itself, migrations (fixtures)
// and internal/*.
var layers = map[string][]string{
	".":                   {},
	"cmd/docket":          {".", "api", "api/client", "appeals", "audit", "notify", "migrations", "internal/*"},
	"api":                 {".", "api/console", "api/httpstatus", "appeals", "appeals/dsa", "audit"},
	"api/client":          {".", "appeals", "audit"},
	"api/console":         {".", "api/httpstatus", "appeals", "appeals/dsa", "audit"},
	"api/httpstatus":      {"."},
	"appeals":             {".", "appeals/dsa", "appeals/groupcommit", "audit"},
	"appeals/dsa":         {"."},
	"appeals/groupcommit": {},
	"audit":               {},
	"notify":              {"audit"},
	"migrations":          {},
	"internal/archtest":   {},
	"internal/audittest":  {},
	"internal/childproc":  {},
	"internal/deploytest": {},
	"internal/crashtest":  {"notify", "internal/childproc"},
	"internal/loadgen":    {".", "api/client", "appeals"},
	"internal/logtest":    {"audit"},
	"internal/natstest":   {"internal/childproc"},
	"internal/oapitest":   {},
	"internal/pgdial":     {},
	"internal/pgproxy":    {},
	"internal/pgtest":     {"migrations"},
}

// testLayers are what a package's tests may import beyond its own layer:
// each an end-to-end test that needs the package above it.
var testLayers = map[string][]string{
	// The console's browser tests drive the whole HTTP server it is mounted in.
	"api/console": {"api"},
	// The client's tests drive the real server and verify its bundles.
	"api/client": {"api", "audit"},
}

// domain packages never import net/http (nor any net/http/...): HTTP is
// the api's.
var domain = []string{"appeals", "appeals/dsa", "appeals/groupcommit", "audit", "notify"}

// httpExceptions are the files of a domain package that still import
// net/http, each a known debt. There are none: the remote verifier, a
// client of the public API, lives in api/client.
var httpExceptions = map[string]string{}

type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// packages lists the module's packages with go list. go test caches a
// test's result by the files the test itself opens, not by what go list
// read, so it first opens every directory and Go file of the module: a
// new package or a changed import then runs the test again.
func packages(t *testing.T) []pkg {
	t.Helper()
	root := filepath.Join("..", "..")
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") || path == filepath.Join(root, "go.mod") {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return nil
	}))
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// may reports whether package from may import package to (both relative).
func may(from, to string, test bool) bool {
	allowed := layers[from]
	if test {
		allowed = append(slices.Clone(allowed), from, "migrations", "internal/*")
		allowed = append(allowed, testLayers[from]...)
	}
	for _, a := range allowed {
		if a == to || a == "internal/*" && strings.HasPrefix(to, "internal/") {
			return true
		}
	}
	return false
}

// TestImportsFollowTheMap fails on an import against the intended
// direction, and on a package the map does not place.
func TestImportsFollowTheMap(t *testing.T) {
	t.Parallel()
	for _, p := range packages(t) {
		from, ok := rel(p.ImportPath)
		require.True(t, ok, "%s is outside the module", p.ImportPath)
		if _, known := layers[from]; !known {
			t.Errorf("%s is not on the package map (internal/archtest layers, README \"How it is built\")", from)
			continue
		}
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				to, ours := rel(imp)
				if ours && !may(from, to, test) {
					kind := "imports"
					if test {
						kind = "imports in a test"
					}
					t.Errorf("%s %s %s, against the package map", from, kind, to)
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
}

// TestDomainPackagesDoNotSpeakHTTP fails when a domain package imports
// net/http or a package under it, except for the files httpExceptions
// names; and when an exception is no longer needed, so the list shrinks.
func TestDomainPackagesDoNotSpeakHTTP(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	for _, p := range packages(t) {
		from, _ := rel(p.ImportPath)
		if !slices.Contains(domain, from) {
			continue
		}
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.ImportsOnly)
			require.NoError(t, err)
			for _, spec := range file.Imports {
				path, err := strconv.Unquote(spec.Path.Value)
				require.NoError(t, err)
				if path != "net/http" && !strings.HasPrefix(path, "net/http/") {
					continue
				}
				name := from + "/" + f
				if _, ok := httpExceptions[name]; ok {
					used[name] = true
					continue
				}
				t.Errorf("%s imports %s: domain packages never speak HTTP", name, path)
			}
		}
	}
	for name := range httpExceptions {
		if !used[name] {
			t.Errorf("%s no longer imports net/http: drop its exception", name)
		}
	}
}

// createAuditTable finds the tables of the log that a migration creates.
var createAuditTable = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(audit_\w+)`)

// auditTables matches a name of the log's tables: those the migrations
// create, so that a table added later is covered without being listed.
func auditTables(t *testing.T) *regexp.Regexp {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "migrations", "*.sql"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range createAuditTable.FindAllStringSubmatch(string(raw), -1) {
			names = append(names, m[1])
		}
	}
	// The tables known when this test was written; more may come.
	for _, want := range []string{"audit_staging", "audit_leaves", "audit_nodes", "audit_checkpoints", "audit_integrator", "audit_log_identity"} {
		require.Contains(t, names, want, "the migrations create the log's tables")
	}
	slices.Sort(names)
	return regexp.MustCompile(`\b(` + strings.Join(slices.Compact(names), "|") + `)\b`)
}

// TestOnlyAuditReadsItsTables: the log's tables are audit's; every other
// package of the service reads the log through audit's API (Leaves,
// LeafCount, Export, Log), so that the log's layout can change in one
// place. Tests and internal/* (fixtures, the crash harness's checks, an
// attacker's tools) may read them; migrations create them.
func TestOnlyAuditReadsItsTables(t *testing.T) {
	t.Parallel()
	tables := auditTables(t)
	for _, p := range packages(t) {
		from, _ := rel(p.ImportPath)
		if from == "audit" || from == "migrations" || strings.HasPrefix(from, "internal/") {
			continue
		}
		for _, f := range p.GoFiles {
			raw, err := os.ReadFile(filepath.Join(p.Dir, f))
			require.NoError(t, err)
			for _, m := range tables.FindAllString(string(raw), -1) {
				t.Errorf("%s/%s names the log's table %s: read the log through package audit", from, f, m)
			}
		}
	}
}

// TestReadmeMapsEveryPackage fails when the README's package map ("How it
// is built") does not link a package of the map above to its directory
// (the root package to its doc.go), where the package's doc.go tells its
// design: the README's map and this one list the same packages.
func TestReadmeMapsEveryPackage(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, section, found := strings.Cut(string(raw), "\n## How it is built\n")
	require.True(t, found, "README has a section \"How it is built\"")
	section, _, _ = strings.Cut(section, "\n## ")
	for from := range layers {
		link := "](" + from + "/)"
		if from == "." {
			link = "](doc.go)"
		}
		if !strings.Contains(section, link) {
			t.Errorf("README \"How it is built\" does not link %s (want %q)", from, link)
		}
	}
}
