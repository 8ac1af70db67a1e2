package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docket-dev/docket/notify"
)

// adServer stands for the platform's ad server.
type adServer struct{}

func (adServer) ResumeAd(advertiserID, adID string) error      { return nil }
func (adServer) ReinstateAdvertiser(advertiserID string) error { return nil }

// An ad server's consumer that lets an ad run again, or reinstates an
// advertiser, when an appeal reverses the decision. The durable consumer
// keeps its position on the server, so a restart neither misses nor
// repeats a reversal; the handler is idempotent all the same, because a
// crash between acting and acknowledging delivers that entry again.
func Example_reinstateOnReversal() {
	ctx := context.Background()
	nc, err := nats.Connect("nats://127.0.0.1:4223") // the embedded server of `docket serve`
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ads := adServer{}
	err = notify.Consume(ctx, js, notify.ConsumeOptions{
		Subject:   "decision.reversed", // stream subject docket.decision.reversed
		Durable:   "adserver-reinstate",
		FromIndex: 0, // first run: every reversal so far
	}, func(ev notify.Event) error {
		var entry struct {
			Record struct {
				AdvertiserID string  `json:"advertiser_id"`
				AdID         *string `json:"ad_id"`
				Effect       string  `json:"effect"` // ad_may_run | advertiser_reinstated
			} `json:"record"`
		}
		if err := json.Unmarshal(ev.Data, &entry); err != nil {
			return fmt.Errorf("entry %d: %w", ev.Index, err)
		}
		r := entry.Record
		switch {
		case r.Effect == "advertiser_reinstated":
			return ads.ReinstateAdvertiser(r.AdvertiserID)
		case r.AdID != nil:
			return ads.ResumeAd(r.AdvertiserID, *r.AdID)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
