// Package notify announces every audit log entry on NATS JetStream.
//
// The audit log is the outbox: a Relay reads integrated leaves in index
// order and publishes each to stream DOCKET as subject docket.<entry type>,
// with headers Nats-Msg-Id (<origin>/<index>) and Docket-Index. Its cursor
// lives in Postgres and moves only past a contiguous prefix that JetStream
// acknowledged, so a crash or an outage re-sends but never skips. Every
// message also names its predecessor (Nats-Expected-Last-Msg-Id; on a
// replicated stream Nats-Expected-Last-Sequence instead, which a
// cluster's leader checks before it replicates the message), so the
// stream holds a gapless chain that the relay can re-read after an outage
// of any length; together with JetStream's duplicate window this keeps
// consumers from seeing an entry twice. The package also starts the
// embedded NATS server and reads the stream for `docket events`.
//
// # An authenticated, append-only bus
//
// The chain and the duplicate window guard against the relay's own
// retries, not against other publishers: a message at the next index with
// the right id would take the entry's place. So only Docket may publish.
// StartEmbedded admits nkey users only, generated into <data-dir>/nats by
// EnsureCredentials (mode 0600, never overwritten): docket.nk, Docket's
// identity with PublisherPermissions, and reader.nk plus users/*.nk
// (AddConsumerUser) with ReaderPermissions, which allow looking up stream
// DOCKET, reading a message by sequence, creating and looking up
// consumers, fetching and acknowledging, and nothing else. It listens on
// loopback unless told otherwise. For an external NATS docs/operations.md gives
// the account configuration with the same permissions, and a test runs
// it. Stream DOCKET itself denies message deletes and purges
// (EnsureStream), and Docket's identity may not delete the stream.
//
// # Foreign messages
//
// A NATS configured otherwise (before this change, say) may hold
// messages that the relay did not publish. A message is genuine when its
// id is <origin>/<k> or <origin>/<k>#<seq>, its Docket-Index is k, its
// subject docket.<type>, and its bytes those of leaf k; anything else is
// foreign. The relay never stalls on one:
//
//   - When the stream's last message is foreign, reconcile walks back (at
//     most max(1000, 2*Window) messages) to the newest genuine entry and
//     goes on after it (after the cursor if there is none), expecting the
//     stream's actual last id, or nothing when that message had none
//     (JetStream then holds no last id to compare with).
//   - A foreign message holding the plain id of an index not yet
//     delivered (an impostor, or a high id like <origin>/999999) would
//     make JetStream drop the entry as a duplicate. Those found by the
//     walk give their index a salt: the entry goes out as
//     <origin>/<k>#<seq>, seq being the foreign message's stream sequence,
//     an id nobody can have used before that message existed. The choice
//     over waiting out the duplicate window: no stall of two minutes,
//     and the entry still lands right after the impostor, in order.
//   - Every duplicate ack is checked against the stored message: other
//     bytes mean an impostor arrived while the window was in flight. The
//     rest of that window may already sit behind it, so the relay sends
//     the window again from the impostor's index, salted; such entries
//     reach consumers twice, the repeat after the impostor, in order.
//
// Each foreign message is reported once: a WARN log line (stream
// sequence, id, subject), docket_notify_foreign_messages_total, and
// Status.Foreign and LastForeign for /readyz, which stays ready because
// delivery goes on. Consume skips messages that are not well-formed
// entries (ConsumeOptions.OnSkip hears of them); a well-formed impostor
// is delivered like an entry: the genuine entry for an index is the one
// whose bytes the log's inclusion proof covers.
package notify
