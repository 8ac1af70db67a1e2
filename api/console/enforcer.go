package console

import (
	"crypto/sha256"
	"errors"
	"github.com/docket-dev/docket"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/docket-dev/docket/appeals"
)

// deciders record decisions and notices, as in the API: enforcers (a
// pipeline, or staff by hand here) and admins.
var deciders = docket.Recorders

// Enumerations the decision form offers, as the API names them.
var (
	decisionSources      = enumValues("source")
	automatedDecisions   = enumValues("automated_decision")
	decisionContentTypes = enumValues("content_type")
	noticeChannels       = enumValues("channel")
)

// decisionForm is the decision form as last submitted; the store checks
// every field (RecordDecision).
type decisionForm struct {
	AdvertiserID, AdID, Action, PolicyCode, Ground, LegalReference    string
	Explanation, Facts, Source, AutomatedDetection, AutomatedDecision string
	TerritorialScope, EndsAt                                          string
	// Key makes the form's sending once: sent again (a double click, the
	// back button), it shows the decision it recorded, not a second one.
	Key         string
	ContentType map[string]bool
	Errors      map[string]string
}

type decisionNewView struct {
	Form                                                         decisionForm
	Policies                                                     []appeals.Policy
	Actions, Sources, AutomatedDecisions, ContentTypes, Channels []string
}

// decisionNew is the form that records a decision by hand.
func (c *Console) decisionNew(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	return c.renderDecisionNew(w, r, s, http.StatusOK, "", decisionForm{Ground: string(appeals.GroundTerms),
		Source: string(appeals.SourceVoluntary), AutomatedDetection: "no", AutomatedDecision: string(appeals.AutomatedNone),
		Key: nonce()})
}

func (c *Console) renderDecisionNew(w http.ResponseWriter, r *http.Request, s *appeals.Session, status int, errMsg string, form decisionForm) error {
	page, err := c.store.ListPolicies(r.Context(), appeals.PageRequest{Limit: appeals.MaxLimit})
	if err != nil {
		return err
	}
	v := decisionNewView{Form: form, Policies: page.Items, Actions: decisionActions, Sources: decisionSources,
		AutomatedDecisions: automatedDecisions, ContentTypes: decisionContentTypes}
	c.render(w, r, status, "decision-new", view{Session: s, Title: "Record a decision", Error: errMsg, Data: v})
	return nil
}

// recordDecision records the decision through the store's RecordDecision,
// the API's POST /v1/decisions, and shows it.
func (c *Console) recordDecision(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	form := decisionFormOf(r.PostForm)
	var opts []appeals.WriteOption
	if form.Key != "" {
		opt, err := formOnce(s, r.PostForm, form.Key)
		if err != nil {
			return err
		}
		opts = append(opts, opt)
	}
	d, err := c.store.RecordDecision(r.Context(), s.Actor, form.input(r.PostForm["content_type"]), opts...)
	var replay *appeals.Replay
	if errors.As(err, &replay) && replay.Headers["Location"] != "" {
		http.Redirect(w, r, replay.Headers["Location"], http.StatusSeeOther)
		return nil
	}
	if docket.ErrorCode(err) == docket.KeyReused {
		return docket.Errorf(docket.Conflict, "this form was sent before, with other values, and recorded a decision; open a new form to record another")
	}
	if docket.ErrorCode(err) == docket.Invalid {
		form.Errors = fieldErrors(err)
		return c.renderDecisionNew(w, r, s, statusOf(err), message(err), form)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, decidedAt(d), http.StatusSeeOther)
	return nil
}

// decisionFormOf reads the decision form as submitted, to show again on a
// refusal.
func decisionFormOf(f url.Values) decisionForm {
	form := decisionForm{AdvertiserID: strings.TrimSpace(f.Get("advertiser_id")), AdID: strings.TrimSpace(f.Get("ad_id")),
		Action: f.Get("action"), PolicyCode: f.Get("policy_code"), Ground: f.Get("ground"),
		LegalReference: strings.TrimSpace(f.Get("legal_reference")),
		Explanation:    strings.ReplaceAll(f.Get("explanation"), "\r\n", "\n"), Facts: strings.ReplaceAll(f.Get("facts"), "\r\n", "\n"),
		Source: f.Get("source"), AutomatedDetection: f.Get("automated_detection"), AutomatedDecision: f.Get("automated_decision"),
		TerritorialScope: f.Get("territorial_scope"), EndsAt: strings.TrimSpace(f.Get("ends_at")), ContentType: map[string]bool{},
		Key: f.Get("form_key")}
	for _, ct := range f["content_type"] {
		form.ContentType[ct] = true
	}
	return form
}

// input is the form as the store takes it, with contentTypes as checked
// (in the order sent, which the form's set does not keep). A value the
// contract does not know passes through, for the store to name.
func (form decisionForm) input(contentTypes []string) appeals.DecisionInput {
	in := appeals.DecisionInput{AdvertiserID: form.AdvertiserID, AdID: form.AdID, Action: appeals.Action(form.Action),
		PolicyCode: form.PolicyCode, Ground: appeals.Ground(form.Ground), LegalReference: form.LegalReference,
		Explanation: form.Explanation, Facts: form.Facts, Source: appeals.Source(form.Source),
		AutomatedDecision: appeals.AutomatedDecision(form.AutomatedDecision), ContentType: contentTypes}
	switch form.AutomatedDetection {
	case "yes", "no":
		yes := form.AutomatedDetection == "yes"
		in.AutomatedDetection = &yes
	}
	for _, c := range strings.FieldsFunc(form.TerritorialScope, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		in.TerritorialScope = append(in.TerritorialScope, strings.ToUpper(c))
	}
	if form.EndsAt != "" {
		// A datetime-local field says 2026-12-31T23:59, read as UTC; an
		// RFC 3339 time passes as typed.
		if t, err := time.Parse("2006-01-02T15:04", form.EndsAt); err == nil {
			in.EndsAt = t.UTC().Format(time.RFC3339)
		} else {
			in.EndsAt = form.EndsAt
		}
	}
	return in
}

// formOnce makes the form's sending once under its key: the same form
// sent again replays the first reply, the redirect to the decision it
// recorded (as an Idempotency-Key does in the API, and in the same table).
func formOnce(s *appeals.Session, f url.Values, key string) (appeals.WriteOption, error) {
	if len(key) > 64 {
		return nil, docket.Errorf(docket.Invalid, "the form's key is malformed")
	}
	fields := url.Values{}
	for k, v := range f {
		if k != "csrf" && k != "form_key" {
			fields[k] = v
		}
	}
	h := sha256.Sum256([]byte("POST /ui/decisions\n" + fields.Encode()))
	return appeals.Idempotent(&appeals.Idempotency{Actor: s.Actor.String(), Tenant: s.Actor.AdvertiserID,
		Key: "console-form:" + key, RequestHash: h[:],
		Reply: func(result any) (int, map[string]string, []byte, error) {
			return http.StatusSeeOther, map[string]string{"Location": decidedAt(result.(appeals.Decision))}, nil, nil
		}}), nil
}

// decidedAt is where the decision form sends the browser once recorded.
func decidedAt(d appeals.Decision) string {
	return "/ui/decisions/" + url.PathEscape(d.ID) + "?done=decided"
}

// recordNotice records that the decision's statement of reasons reached
// its advertiser (RecordNotice, the API's POST /v1/decisions/{id}/notices),
// delivered now.
func (c *Console) recordNotice(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	id := r.PathValue("id")
	_, err := c.store.RecordNotice(r.Context(), s.Actor, id, appeals.NoticeInput{Channel: appeals.NoticeChannel(r.PostForm.Get("channel")),
		Reference: strings.TrimSpace(r.PostForm.Get("reference"))})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/decisions/"+url.PathEscape(id)+"?done=notified", http.StatusSeeOther)
	return nil
}
