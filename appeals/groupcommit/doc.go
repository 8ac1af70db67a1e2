// Package groupcommit batches concurrent calls of one kind into one
// database round: group commit. It knows nothing of what the calls do: a
// Batcher is generic over a request type Q and a result type R, and the
// work is a function its owner gives it. It has no SQL of its own; a Lane,
// the connection a batch's statements run on, runs the statements its
// owner names.
//
// # Why group commit
//
// Under load, what a write costs is mostly not its work but its round
// trips and its commit: on a busy two-core machine, the queue's claims and
// resolutions spent more time waiting on the network and on the WAL flush
// than in Postgres's executor. Answering many calls with one pair of
// statements shares those costs: a batch of 20 claims makes the round
// trips and the commit of one. Alone, a call pays nothing extra: it runs
// at once, as a batch of one.
//
// # How a batch forms
//
// Do queues the call. If no batch is in flight, Do starts the Batcher's
// one goroutine, which takes the queue, up to Options.MaxBatch calls in
// the order they came, and runs them; calls that come meanwhile queue, and
// when the batch ends the goroutine takes them as the next batch, until
// the queue is empty and the goroutine ends. So batches form by
// themselves, as large as the load makes them, and a Batcher never runs
// two at once: its run function needs no lock of its own, and a Lane it
// alone uses needs none either.
//
// With Options.MaxWait zero (the default), a batch adds no wait: before
// taking the queue, the goroutine only yields once, letting callers just
// answered by the batch before, and about to queue again, join the next
// one (measured to matter on two cores; see gather). With MaxWait set, it
// waits until the batch is full or its oldest call has waited MaxWait:
// larger batches for a bounded extra latency.
//
// # Results, failures and going alone
//
// The run function answers each request with its own Result, so one
// call's refusal is that call's only. A run can fail as a whole instead
// (it returns an error: a statement of the batch failed). That may be one
// call's fault, input that got past its checks, and one bad call must
// never fail another; so each call of a failed batch of several is
// answered again alone, with its caller's ctx, by the Batcher's AloneFunc,
// and the bad one fails by itself. A failed batch of one is its call's
// error. A run can also send one call to go alone (Result.Err wrapping
// ErrAlone): the queue does that for a call whose row another transaction
// holds, which the batch will not wait for and the call alone will. A
// panic in run is each of its calls' error (ErrPanicked); no caller is
// left waiting.
//
// # Cancellation and deadlines
//
// Each waiting call watches its own ctx. When it ends, Do returns
// ctx.Err() at once. A call still queued is dropped and never runs; so is
// a call whose ctx has ended by the time its batch is taken. A call
// already in a running batch cannot be taken out of it: the batch goes on
// for the others and this call's answer is discarded, so its write may
// commit although its caller was told ctx.Err(), as with any write whose
// caller gives up while the database works. Callers that must know
// retry idempotently, or read back.
//
// A batch is every caller's, so no one caller's cancellation ends it, and
// it carries none of their context values. But it must not outlive any of
// its callers' deadlines: its ctx ends at the earliest deadline among
// them. If that ends the batch's work, the batch fails as a whole, and
// its other calls are answered alone, each under its own deadline.
//
// # Lanes
//
// A Lane is a connection kept out of the pool for one Batcher's
// statements, with a session of its own (the queue's lanes plan their
// statements generically, which would be wrong for the pool's other
// statements) and its statements prepared once. The Batcher runs one
// batch at a time, so the lane is never used by two. A lane whose work
// failed is dropped, and opens a fresh connection when next used.
package groupcommit
