package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docPages are the pages whose relative links TestDocLinksResolve checks:
// the README and every page under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	require.NotEmpty(t, pages, "docs/*.md")
	return append([]string{filepath.Join(root, "README.md")}, pages...)
}

var (
	// mdLink is a Markdown link or image: [text](target) or ![alt](target),
	// the target up to the first space or closing parenthesis.
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6}\s+(.+?)\s*#*\s*$`)
	// notSlug is what GitHub drops from a heading's text to make its
	// anchor: everything but letters, digits, spaces, hyphens and
	// underscores.
	notSlug = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// anchors returns the anchors GitHub gives the headings of a Markdown
// file: lower case, punctuation dropped, spaces as hyphens, a repeated
// one suffixed -1, -2, ...
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range outsideFences(text, false) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := strings.ReplaceAll(notSlug.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// outsideFences returns the lines of text that are not inside a fenced
// code block, with inline code spans blanked if blank is set: a link
// shown as code is not a link.
func outsideFences(text string, blank bool) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		switch {
		case fenced:
		case blank:
			out = append(out, inlineCode.ReplaceAllString(line, "``"))
		default:
			out = append(out, line)
		}
	}
	return out
}

var inlineCode = regexp.MustCompile("`[^`]*`")

// TestDocLinksResolve fails on a relative link in README.md or docs/*.md
// whose file or directory is not in the repository, and on a link to a
// heading (#anchor, page.md#anchor) that the page does not have: moving a
// section from one page to another must move its links too.
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	texts := map[string]string{}
	for _, p := range docPages(t) {
		raw, err := os.ReadFile(p)
		require.NoError(t, err)
		texts[filepath.Clean(p)] = string(raw)
	}
	name := func(p string) string {
		r, err := filepath.Rel(root, p)
		if err != nil {
			return p
		}
		return r
	}
	checked := 0
	for page, text := range texts {
		for _, line := range outsideFences(text, true) {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				file, anchor, _ := strings.Cut(target, "#")
				dest := page
				if file != "" {
					dest = filepath.Clean(filepath.Join(filepath.Dir(page), file))
					_, err := os.Stat(dest)
					if err != nil {
						t.Errorf("%s links to %s: no such file or directory in the repository", name(page), target)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				destText, ok := texts[dest]
				if !ok {
					if !strings.HasSuffix(dest, ".md") {
						t.Errorf("%s links to %s: an anchor in a file that is not Markdown", name(page), target)
						continue
					}
					raw, err := os.ReadFile(dest)
					require.NoError(t, err)
					destText = string(raw)
				}
				if !anchors(destText)[anchor] {
					t.Errorf("%s links to %s: %s has no heading #%s", name(page), target, name(dest), anchor)
				}
			}
		}
	}
	t.Logf("%d relative links in %d pages resolve", checked, len(texts))
	require.Greater(t, checked, 50, "the pages link to each other and to the packages")
}

func TestAnchorsAreGitHubs(t *testing.T) {
	t.Parallel()
	got := anchors("# Docket\n## Set-up\n## NATS credentials and permissions\n```\n# not a heading\n```\n" +
		"## After appeals/groupcommit\n## As of the trust and structure work (2026-12)\n### `docket verify`, offline\n## Set-up\n")
	for _, want := range []string{"docket", "set-up", "nats-credentials-and-permissions", "after-appealsgroupcommit",
		"as-of-the-trust-and-structure-work-2026-12", "docket-verify-offline", "set-up-1"} {
		require.True(t, got[want], "%s in %v", want, got)
	}
	require.False(t, got["not-a-heading"])
}
