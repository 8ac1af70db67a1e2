// Package loadgen drives a running Docket over HTTP as real traffic would
// (closed loop: each client sends its next request when the last returns)
// and measures it: per-operation throughput and latency, the audit log's
// integration lag seen through the public checkpoint, the notification lag
// seen on NATS, and, as a yardstick, raw single-row INSERTs into the same
// Postgres at the same concurrency.
//
// # Integration lag
//
// The API does not tell a writer which leaf index its entry got, so the lag
// is measured by counting. Before the run the generator waits for the log
// to settle and takes the checkpoint size S0. During the run a poller
// fetches GET /v1/audit/checkpoint every PollInterval and keeps (time,
// size). Every successful write records its acknowledgement time and the
// number of entries the contract says it appends (a decision, an appeal and
// a claim one each; a resolution one, plus one for the decision's reversal).
// After the run, writes are ordered by acknowledgement; the k-th write is
// covered once a checkpoint's size is at least S0 plus the entries of
// writes acknowledged up to and including it, and its lag is the time of
// the first such observed checkpoint minus its acknowledgement. Because the
// integrator sequences entries in commit order and a commit precedes its
// acknowledgement, that many entries include the write's own, except when a
// write that committed earlier was acknowledged later, which shifts a
// sample by at most one in-flight request per client. The method assumes
// the bench is the log's only writer during the run; the report says so
// when the settled final size disagrees with the count. Lag includes up to
// one PollInterval of sampling delay.
//
// With NATS on, each decision's notification carries its leaf index
// (Docket-Index), which gives an exact lag for decisions to check the
// counting against; on this machine the two agree within a few ms.
package loadgen
