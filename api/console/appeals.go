package console

import (
	"github.com/docket-dev/docket"
	"net/http"
	"net/url"

	"github.com/docket-dev/docket/appeals"
)

// appealStates are the list's state filter's choices, as the API names them.
var appealStates = enumValues("appeal_state")

type appealsView struct {
	Items          []appeals.Appeal
	State          string
	Overdue, Staff bool
	States         []string
	Next           string
}

// appealsList lists appeals as GET /v1/appeals does (ListAppeals): an
// advertiser's own, every one for staff; by state, overdue only.
func (c *Console) appealsList(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	q := r.URL.Query()
	f := appeals.AppealFilter{State: appeals.AppealState(q.Get("state")), PageRequest: appeals.PageRequest{Limit: 100, Cursor: q.Get("cursor")}}
	switch q.Get("overdue") {
	case "", "false":
	case "true":
		f.Overdue = true
	default:
		return docket.Errorf(docket.Invalid, "overdue must be true or false")
	}
	page, err := c.store.ListAppeals(r.Context(), s.Actor, f)
	if err != nil {
		return err
	}
	v := appealsView{Items: page.Items, State: string(f.State), Overdue: f.Overdue, States: appealStates,
		Staff: s.Actor.Role != docket.RoleAdvertiser}
	if page.NextCursor != "" {
		next := url.Values{"cursor": {page.NextCursor}}
		if f.State != "" {
			next.Set("state", v.State)
		}
		if f.Overdue {
			next.Set("overdue", "true")
		}
		v.Next = "/ui/appeals?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "appeals", view{Session: s, Title: "Appeals", Data: v})
	return nil
}
