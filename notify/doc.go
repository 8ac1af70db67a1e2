// Package notify announces every audit log entry on NATS JetStream.
//
// The audit log is the outbox: a Relay reads integrated leaves in index
// order and publishes each to stream DOCKET as subject docket.<entry type>,
// with headers Nats-Msg-Id (<origin>/<index>) and Docket-Index. Its cursor
// lives in Postgres and moves only past a contiguous prefix that JetStream
// acknowledged, so a crash or an outage re-sends but never skips. Every
// message also names its predecessor (Nats-Expected-Last-Msg-Id), so the
// stream holds a gapless chain that the relay can re-read after an outage
// of any length; together with JetStream's duplicate window this keeps
// consumers from seeing an entry twice. The package also starts the
// embedded NATS server and reads the stream for `docket events`.
package notify
