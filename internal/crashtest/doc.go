// Package crashtest is the crash harness: it runs the real `docket serve`
// binary as child processes (two, or three replicas, on one database and
// one NATS), drives a
// write load of every kind at them over HTTP, kills them with SIGKILL at
// random moments and restarts them, and then checks what every client
// was told against the database, the audit log, its checkpoints and what
// a durable NATS consumer received. With replicas it also reads, from
// each process's log, when it held the integrator's and the relay's
// election (ReadTerms), and requires that no two terms overlap
// (CheckTerms) and that a killed holder's successor came within the
// stated bound (Handovers). Against a three-node JetStream cluster
// (natstest) it loses NATS nodes instead, SIGKILLed nats-server
// processes or in-process nodes shut down, and checks the same.
// TestReplicaCutOff puts each replica's database through its own
// internal/pgproxy and cuts the holder off as a partition does
// (pgproxy.Vanish), its process alive: the successor comes once the
// emulated keepalive ends the cut session, the cut replica answers 503
// and recovers by itself when healed, and its belief in its lost term may
// outlast the lock, but nothing it does after the cut commits.
//
// The pieces are separate so that the checks can be shown to fail: Check
// and CheckDelivery take what they compare as arguments, and the tests
// hand them a tampered database (in a transaction they roll back) or a
// tampered ledger and require the specific problem. Check reads the
// database once and runs one step per guarantee, each returning its
// problems: every acknowledged write's change in the database with one
// entry ("acked:"), every change with its entries and every entry with
// its change ("entry:"), keyed retries answered alike and one change per
// logical request ("idempotency:"), and the log's indices dense, every
// staged entry a leaf ("log:") and every checkpoint's root the tree's
// ("checkpoint:").
package crashtest
