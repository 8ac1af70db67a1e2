package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// admins are the policy owners: only they read the admin pages, as only
// they revise policies and reverse decisions in bulk in the API.
var admins = docket.Admins

type policiesView struct {
	Items []appeals.Policy
	Next  string
}

// policies lists the policies, each at its current version.
func (c *Console) policies(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	page, err := c.store.ListPolicies(r.Context(), appeals.PageRequest{Limit: appeals.MaxLimit, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		return err
	}
	v := policiesView{Items: page.Items}
	if page.NextCursor != "" {
		v.Next = "/ui/policies?cursor=" + url.QueryEscape(page.NextCursor)
	}
	c.render(w, r, http.StatusOK, "policies", view{Session: s, Title: "Policies", Data: v})
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
}

// policy shows one policy's versions, a diff between two of them
// (?from=&to=, by default the last two) and the bulk reversal form.
func (c *Console) policy(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	return c.renderPolicy(w, r, s, http.StatusOK, "", reversalForm{})
}

func (c *Console) renderPolicy(w http.ResponseWriter, r *http.Request, s *appeals.Session, status int, errMsg string, form reversalForm) error {
	vs, err := c.store.PolicyVersions(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	v := policyView{Versions: vs, Current: vs[len(vs)-1], Form: form}
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
	c.render(w, r, status, "policy", view{Session: s, Title: "Policy " + v.Current.Code, Error: errMsg, Data: v})
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
	if rerr := c.renderPolicy(w, r, s, statusOf(err), message(err), form); rerr != nil {
		return err
	}
	return nil
}
