package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

type queueView struct {
	// The counts: waiting to be claimed, claimed by me, escalated, overdue.
	Waiting, Mine, Escalated, Overdue int64
	MineItems, WaitingItems           []appeals.Appeal
	Senior                            bool
	Now                               time.Time
}

// queue shows the reviewer's queue: its counts, the appeals the reviewer
// holds, and those waiting, overdue ones marked.
func (c *Console) queue(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	ctx := r.Context()
	now := c.now()
	depth, err := c.store.QueueDepth(ctx, now)
	if err != nil {
		return err
	}
	v := queueView{Waiting: depth.Pending, Escalated: depth.Escalated, Overdue: depth.Overdue,
		Senior: s.Actor.Role == docket.RoleSeniorReviewer, Now: now}
	for _, state := range []appeals.AppealState{appeals.AppealInReview, appeals.AppealEscalated} {
		mine, err := c.store.ListAppeals(ctx, s.Actor, appeals.AppealFilter{State: state, AssignedTo: s.Actor.String(),
			PageRequest: appeals.PageRequest{Limit: appeals.MaxLimit}})
		if err != nil {
			return err
		}
		v.MineItems = append(v.MineItems, mine.Items...)
	}
	v.Mine = int64(len(v.MineItems))
	states := []appeals.AppealState{appeals.AppealPending}
	if v.Senior {
		states = append(states, appeals.AppealEscalated)
	}
	for _, state := range states {
		waiting, err := c.store.ListAppeals(ctx, s.Actor, appeals.AppealFilter{State: state, PageRequest: appeals.PageRequest{Limit: 50}})
		if err != nil {
			return err
		}
		for _, a := range waiting.Items {
			if a.AssignedTo == nil {
				v.WaitingItems = append(v.WaitingItems, a)
			}
		}
	}
	c.render(w, r, http.StatusOK, "queue", view{Session: s, Title: "Review queue", Flash: flash(r), Data: v})
	return nil
}

// claim takes the next appeal from the queue (the store's rules: oldest
// due first, never an appeal of one's own decision) and opens it.
func (c *Console) claim(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	a, err := c.store.Claim(r.Context(), s.Actor)
	if err != nil {
		return err
	}
	if a == nil {
		http.Redirect(w, r, "/ui/queue?done=empty", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/ui/appeals/"+a.ID, http.StatusSeeOther)
	return nil
}

// reviewForm is the resolve and escalate forms as last submitted.
type reviewForm struct {
	Outcome, Rationale, Reason string
	Errors                     map[string]string
}

type appealView struct {
	A appeals.Appeal
	D appeals.Decision
	// AsDecided is the policy's version the decision pinned; Current is
	// today's. Diff is set when they differ.
	AsDecided, Current appeals.Policy
	Diff               []diffLine
	// Holds: the reader holds the appeal's claim and may resolve or
	// escalate it. Decider: the reader made the decision (separation of
	// duties: never its reviewer).
	Holds, Decider bool
	LeaseLeft      string
	Form           reviewForm
}

func (c *Console) appeal(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	return c.renderAppeal(w, r, s, http.StatusOK, flash(r), "", reviewForm{})
}

// renderAppeal shows an appeal beside its decision, the advertiser's
// statement, the policy as decided and its changes since, and, to the
// reviewer who holds it, the resolve and escalate forms. An advertiser is
// sent to the decision's page, which shows its appeals in its view.
func (c *Console) renderAppeal(w http.ResponseWriter, r *http.Request, s *appeals.Session, status int,
	flashMsg, errMsg string, form reviewForm) error {
	ctx := r.Context()
	a, err := c.store.Appeal(ctx, s.Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.Actor.Role == docket.RoleAdvertiser {
		http.Redirect(w, r, "/ui/decisions/"+a.DecisionID+"#appeal-"+a.ID, http.StatusSeeOther)
		return nil
	}
	d, err := c.store.Decision(ctx, s.Actor, a.DecisionID)
	if err != nil {
		return err
	}
	asDecided, err := c.store.PolicyVersion(ctx, d.PolicyCode, d.PolicyVersion)
	if err != nil {
		return err
	}
	current, err := c.store.Policy(ctx, d.PolicyCode)
	if err != nil {
		return err
	}
	now := c.now()
	v := appealView{A: a, D: d, AsDecided: asDecided, Current: current, Form: form,
		Decider: docket.NameOf(d.DecidedBy) == s.Actor.Name}
	if current.Version != asDecided.Version {
		v.Diff = diffLines(asDecided.Text, current.Text)
	}
	open := a.State == appeals.AppealInReview || a.State == appeals.AppealEscalated
	if open && a.AssignedTo != nil && *a.AssignedTo == s.Actor.String() && a.LeaseUntil != nil && a.LeaseUntil.After(now) {
		v.Holds = true
		left := a.LeaseUntil.Sub(now).Round(time.Second)
		v.LeaseLeft = fmt.Sprintf("%d:%02d", int(left.Minutes()), int(left.Seconds())%60)
	}
	c.render(w, r, status, "appeal", view{Session: s, Title: "Appeal " + a.ID, Flash: flashMsg, Error: errMsg, Data: v})
	return nil
}

// resolve upholds or reverses the appeal through the store, which checks
// the claim and separation of duties; a refusal is shown on the page.
func (c *Console) resolve(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	form := reviewForm{Outcome: r.PostForm.Get("outcome"), Rationale: r.PostForm.Get("rationale")}
	a, err := c.store.Resolve(r.Context(), s.Actor, r.PathValue("id"),
		appeals.ResolveInput{Outcome: appeals.AppealState(form.Outcome), Rationale: form.Rationale})
	if err != nil {
		return c.refused(w, r, s, err, form)
	}
	http.Redirect(w, r, "/ui/appeals/"+a.ID+"?done="+string(*a.Outcome), http.StatusSeeOther)
	return nil
}

// escalate hands the appeal to a senior reviewer, with a reason.
func (c *Console) escalate(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	form := reviewForm{Reason: r.PostForm.Get("reason")}
	a, err := c.store.Escalate(r.Context(), s.Actor, r.PathValue("id"), appeals.EscalateInput{Reason: form.Reason})
	if err != nil {
		return c.refused(w, r, s, err, form)
	}
	http.Redirect(w, r, "/ui/appeals/"+a.ID+"?done=escalated", http.StatusSeeOther)
	return nil
}

// refused shows a refused review on the appeal's page: invalid input by
// field, a conflict, or a separation-of-duties refusal, in the store's words.
func (c *Console) refused(w http.ResponseWriter, r *http.Request, s *appeals.Session, err error, form reviewForm) error {
	switch docket.ErrorCode(err) {
	case docket.Invalid, docket.Conflict, docket.Forbidden:
		form.Errors = fieldErrors(err)
		msg := message(err)
		if docket.ErrorCode(err) == docket.Forbidden {
			msg = "Refused (separation of duties): " + msg + "."
		}
		if rerr := c.renderAppeal(w, r, s, statusOf(err), "", msg, form); rerr == nil {
			return nil
		}
	}
	return err
}
