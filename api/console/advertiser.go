package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// flashes are the messages a redirect after a form may ask a page to
// show (?done=...); anything else shows nothing.
var flashes = map[string]string{
	"appealed":  "Your appeal was filed. A reviewer answers it by the due date shown below.",
	"withdrawn": "Your appeal was withdrawn.",
	"upheld":    "The appeal is resolved: the decision is upheld.",
	"reversed":  "The appeal is resolved: the decision is reversed.",
	"escalated": "The appeal is escalated to a senior reviewer.",
	"empty":     "Nothing is waiting in the queue for you.",
	// The enforcers' and admins' forms.
	"decided":  "The decision is recorded; its advertiser can read it now.",
	"notified": "The notice is recorded.",
	// The admins' policy forms.
	"policy-saved":     "The policy is saved as a new version.",
	"policy-unchanged": "The title, text and category are those of the current version: no new version was made.",
}

func flash(r *http.Request) string { return flashes[r.URL.Query().Get("done")] }

// Enumerations offered by the list's filters, as the API names them.
var (
	decisionStatuses = enumValues("decision_status")
	decisionActions  = enumValues("action")
)

type decisionsView struct {
	Items             []appeals.Decision
	Status, Action    string
	Policy            string
	Statuses, Actions []string
	Policies          []appeals.Policy
	// Next is the link to the next page, when there is one.
	Next string
}

// decisions lists the decisions the actor may read (an advertiser: its
// own, by the store's rule), filtered by status, action and policy.
func (c *Console) decisions(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	q := r.URL.Query()
	f := appeals.DecisionFilter{Status: appeals.DecisionStatus(q.Get("status")), Action: appeals.Action(q.Get("action")),
		PolicyCode: q.Get("policy"), PageRequest: appeals.PageRequest{Limit: 100, Cursor: q.Get("cursor")}}
	page, err := c.store.ListDecisions(r.Context(), s.Actor, f)
	if err != nil {
		return err
	}
	pols, err := c.store.ListPolicies(r.Context(), appeals.PageRequest{Limit: appeals.MaxLimit})
	if err != nil {
		return err
	}
	v := decisionsView{Items: page.Items, Status: string(f.Status), Action: string(f.Action), Policy: f.PolicyCode,
		Statuses: decisionStatuses, Actions: decisionActions, Policies: pols.Items}
	if page.NextCursor != "" {
		next := url.Values{"cursor": {page.NextCursor}}
		for k, val := range map[string]string{"status": v.Status, "action": v.Action, "policy": f.PolicyCode} {
			if val != "" {
				next.Set(k, val)
			}
		}
		v.Next = "/ui/decisions?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "decisions", view{Session: s, Title: "Decisions", Flash: flash(r), Data: v})
	return nil
}

// appealForm is the appeal form as last submitted, with its problems.
type appealForm struct {
	Statement string
	Evidence  []appeals.EvidenceItem
	Errors    map[string]string
}

// evidenceRows is how many evidence rows the form offers.
const evidenceRows = 3

type decisionView struct {
	D appeals.Decision
	// Policy is the version the decision was taken under, as it was.
	Policy    appeals.Policy
	CanAppeal bool
	Form      appealForm
	// CanNotify: the actor may record a notice (deciders); Channels are
	// the notice form's choices.
	CanNotify bool
	Channels  []string
}

func (c *Console) decision(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	return c.renderDecision(w, r, s, http.StatusOK, flash(r), "", appealForm{})
}

// renderDecision shows a decision's full statement of reasons, its appeals
// and, to its advertiser while it may be appealed, the appeal form.
func (c *Console) renderDecision(w http.ResponseWriter, r *http.Request, s *appeals.Session, status int,
	flashMsg, errMsg string, form appealForm) error {
	d, err := c.store.Decision(r.Context(), s.Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	p, err := c.store.PolicyVersion(r.Context(), d.PolicyCode, d.PolicyVersion)
	if err != nil {
		return err
	}
	for len(form.Evidence) < evidenceRows {
		form.Evidence = append(form.Evidence, appeals.EvidenceItem{})
	}
	v := decisionView{D: d, Policy: p.ViewFor(s.Actor), Form: form,
		CanAppeal: s.Actor.Role == docket.RoleAdvertiser && d.Appeal != nil && d.Appeal.Open,
		CanNotify: s.Actor.Is(deciders...), Channels: noticeChannels}
	c.render(w, r, status, "decision", view{Session: s, Title: "Decision " + d.ID, Flash: flashMsg, Error: errMsg, Data: v})
	return nil
}

// fileAppeal files the advertiser's appeal through the store, which checks
// that the decision is the caller's and may be appealed now.
func (c *Console) fileAppeal(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	form := appealForm{Statement: r.PostForm.Get("statement")}
	descs, urls := r.PostForm["evidence_description"], r.PostForm["evidence_url"]
	if len(descs) != len(urls) || len(descs) > appeals.MaxEvidenceItems {
		return docket.Errorf(docket.Invalid, "the evidence rows are malformed")
	}
	var in appeals.AppealInput
	in.Statement = form.Statement
	for i := range descs {
		item := appeals.EvidenceItem{Description: strings.TrimSpace(descs[i]), URL: strings.TrimSpace(urls[i])}
		form.Evidence = append(form.Evidence, item)
		if item.Description != "" || item.URL != "" {
			in.Evidence = append(in.Evidence, item)
		}
	}
	id := r.PathValue("id")
	_, err := c.store.FileAppeal(r.Context(), s.Actor, id, in)
	switch docket.ErrorCode(err) {
	case docket.Invalid, docket.Conflict:
		form.Errors = fieldErrors(err)
		return c.renderDecision(w, r, s, statusOf(err), "", message(err), form)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/decisions/"+id+"?done=appealed#appeals", http.StatusSeeOther)
	return nil
}

// withdraw withdraws the advertiser's open appeal.
func (c *Console) withdraw(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	a, err := c.store.Withdraw(r.Context(), s.Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/decisions/"+a.DecisionID+"?done=withdrawn#appeals", http.StatusSeeOther)
	return nil
}

// fieldErrors maps an Invalid error's fields to their messages, for the
// form's inline errors.
func fieldErrors(err error) map[string]string {
	m := map[string]string{}
	var e *docket.Error
	if errors.As(err, &e) {
		for _, f := range e.Fields {
			m[f.Field] = f.Message
		}
	}
	return m
}
