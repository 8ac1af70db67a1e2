package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/appeals/dsa"
)

// admins are the policy owners: only they read the admin pages, as only
// they revise policies and reverse decisions in bulk in the API.
var admins = docket.Admins

type policiesView struct {
	Items []appeals.Policy
	Next  string
	// New is the new policy form as last submitted.
	New        policyForm
	Categories []string
}

// policyForm is a policy's text as the admin submits it: a new policy's
// (with its code) or a revision's.
type policyForm struct {
	Code, Title, Text, Category string
	Errors                      map[string]string
}

// policies lists the policies, each at its current version, with the
// form that writes a new one.
func (c *Console) policies(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	return c.renderPolicies(w, r, s, http.StatusOK, "", policyForm{})
}

func (c *Console) renderPolicies(w http.ResponseWriter, r *http.Request, s *appeals.Session, status int, errMsg string, form policyForm) error {
	cursor := ""
	if r.Method == http.MethodGet {
		cursor = r.URL.Query().Get("cursor")
	}
	page, err := c.store.ListPolicies(r.Context(), appeals.PageRequest{Limit: appeals.MaxLimit, Cursor: cursor})
	if err != nil {
		return err
	}
	v := policiesView{Items: page.Items, New: form, Categories: dsa.Categories()}
	if page.NextCursor != "" {
		v.Next = "/ui/policies?cursor=" + url.QueryEscape(page.NextCursor)
	}
	c.render(w, r, status, "policies", view{Session: s, Title: "Policies", Error: errMsg, Data: v})
	return nil
}

// putPolicy writes a policy's new version through the store's PutPolicy,
// the API's PUT /v1/policies/{code}: a new policy (POST /ui/policies,
// the code in the form) or a revision (POST /ui/policies/{code}). The
// same text, title and category again make no new version.
func (c *Console) putPolicy(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	code, revising := r.PathValue("code"), true
	if code == "" {
		code, revising = strings.TrimSpace(r.PostForm.Get("code")), false
	}
	// Browsers send a textarea's lines with CRLF; a policy's text is
	// hashed and diffed by lines, as the API takes it.
	form := policyForm{Code: code, Title: strings.TrimSpace(r.PostForm.Get("title")),
		Text: strings.ReplaceAll(r.PostForm.Get("text"), "\r\n", "\n"), Category: r.PostForm.Get("category")}
	in := appeals.PolicyInput{Title: form.Title, Text: form.Text, Category: form.Category}
	// A revision is of a policy that exists (else a 404 page); a new
	// policy's code must be new, or the form would revise another.
	if _, err := c.store.Policy(r.Context(), code); revising && err != nil {
		return err
	} else if !revising {
		if err == nil {
			err = &docket.Error{Code: docket.Conflict, Message: "the request has invalid fields",
				Fields: []docket.FieldError{{Field: "code", Message: "is taken: revise that policy on its page"}}}
			form.Errors = fieldErrors(err)
			return c.renderPolicies(w, r, s, http.StatusConflict, message(err), form)
		}
	}
	rev, err := c.store.PutPolicy(r.Context(), s.Actor, code, in)
	if docket.ErrorCode(err) == docket.Invalid {
		form.Errors = fieldErrors(err)
		if !revising {
			return c.renderPolicies(w, r, s, statusOf(err), message(err), form)
		}
		if rerr := c.renderPolicy(w, r, s, statusOf(err), message(err), reversalForm{}, &form); rerr != nil {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	done := "policy-saved"
	if !rev.Created {
		done = "policy-unchanged"
	}
	http.Redirect(w, r, "/ui/policies/"+url.PathEscape(rev.Code)+"?done="+done, http.StatusSeeOther)
	return nil
}

// reversalForm is the bulk reversal form as last submitted.
type reversalForm struct {
	Versions  map[int]bool
	Rationale string
	Errors    map[string]string
}

type policyView struct {
	Versions []appeals.Policy
	Current  appeals.Policy
	// From and To are the versions the diff compares (From < To); Diff is
	// empty when the policy has one version.
	From, To appeals.Policy
	Diff     []diffLine
	Form     reversalForm
	// Revise is the revision form: the current version, or what was
	// last submitted.
	Revise     policyForm
	Categories []string
}

// policy shows one policy's versions, a diff between two of them
// (?from=&to=, by default the last two) and the bulk reversal form.
func (c *Console) policy(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	return c.renderPolicy(w, r, s, http.StatusOK, "", reversalForm{}, nil)
}

// renderPolicy shows the policy page; revise is the revision form as
// submitted, nil for the current version.
func (c *Console) renderPolicy(w http.ResponseWriter, r *http.Request, s *appeals.Session, status int, errMsg string,
	form reversalForm, revise *policyForm) error {
	vs, err := c.store.PolicyVersions(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	v := policyView{Versions: vs, Current: vs[len(vs)-1], Form: form, Categories: dsa.Categories()}
	if revise != nil {
		v.Revise = *revise
	} else {
		cur := v.Current
		v.Revise = policyForm{Code: cur.Code, Title: cur.Title, Text: cur.Text, Category: deref(cur.Category)}
	}
	pick := func(name string, def int) (appeals.Policy, error) {
		n := def
		if q := r.URL.Query().Get(name); q != "" && r.Method == http.MethodGet {
			var err error
			if n, err = strconv.Atoi(q); err != nil || n < 1 || n > len(vs) {
				return appeals.Policy{}, docket.Errorf(docket.Invalid, "%s must be a version from 1 to %d", name, len(vs))
			}
		}
		return vs[n-1], nil // versions are numbered from 1 without gaps
	}
	if v.From, err = pick("from", max(1, len(vs)-1)); err != nil {
		return err
	}
	if v.To, err = pick("to", len(vs)); err != nil {
		return err
	}
	if v.From.Version != v.To.Version {
		v.Diff = diffLines(v.From.Text, v.To.Text)
	}
	flashMsg := ""
	if r.Method == http.MethodGet {
		flashMsg = flash(r)
	}
	c.render(w, r, status, "policy", view{Session: s, Title: "Policy " + v.Current.Code, Flash: flashMsg, Error: errMsg, Data: v})
	return nil
}

type reversalView struct {
	Code      string
	Versions  []int
	Rationale string
	// Preview is set before the run, Report after it.
	Preview *appeals.ReversalPreview
	Report  *appeals.ReversalReport
}

// reversal previews a bulk reversal (step=preview: how many decisions in
// effect it would reverse, by the store's CountReversible), then runs it
// (step=run: ReversePolicyVersions, the API's method) and shows its report.
func (c *Console) reversal(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	code := r.PathValue("code")
	form := reversalForm{Versions: map[int]bool{}, Rationale: r.PostForm.Get("rationale")}
	var versions []int
	for _, raw := range r.PostForm["versions"] {
		n, err := strconv.Atoi(raw)
		if err != nil {
			return c.reversalRefused(w, r, s, form, docket.Errorf(docket.Invalid, "versions must be whole numbers"))
		}
		versions = append(versions, n)
		form.Versions[n] = true
	}
	v := reversalView{Code: code, Versions: versions, Rationale: form.Rationale}
	switch r.PostForm.Get("step") {
	case "preview":
		// The run validates the rationale; the preview asks for it now so
		// that the confirmation carries it.
		if err := (appeals.ReversalInput{Versions: versions, Rationale: form.Rationale}).Validate(); err != nil {
			return c.reversalRefused(w, r, s, form, err)
		}
		p, err := c.store.CountReversible(r.Context(), s.Actor, code, versions)
		if err != nil {
			return c.reversalRefused(w, r, s, form, err)
		}
		v.Preview = &p
		c.render(w, r, http.StatusOK, "reversal", view{Session: s, Title: "Reverse decisions under " + code, Data: v})
	case "run":
		rep, err := c.store.ReversePolicyVersions(r.Context(), s.Actor, code, appeals.ReversalInput{Versions: versions, Rationale: form.Rationale})
		if err != nil {
			return c.reversalRefused(w, r, s, form, err)
		}
		v.Report = &rep
		c.render(w, r, http.StatusOK, "reversal", view{Session: s, Title: "Decisions reversed under " + code,
			Flash: "The bulk reversal ran: " + strconv.Itoa(rep.Reversed) + " decisions reversed.", Data: v})
	default:
		return docket.Errorf(docket.Invalid, "the form's step must be preview or run")
	}
	return nil
}

// reversalRefused shows invalid input by field on the policy's page.
func (c *Console) reversalRefused(w http.ResponseWriter, r *http.Request, s *appeals.Session, form reversalForm, err error) error {
	if docket.ErrorCode(err) != docket.Invalid {
		return err
	}
	form.Errors = fieldErrors(err)
	for k, m := range form.Errors {
		if strings.HasPrefix(k, "versions[") {
			form.Errors["versions"] = m
		}
	}
	if rerr := c.renderPolicy(w, r, s, statusOf(err), message(err), form, nil); rerr != nil {
		return err
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
