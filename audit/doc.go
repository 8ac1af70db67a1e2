// Package audit is Docket's tamper-evident log, a transparency log on
// Postgres. Every change of state is one entry: exact JSON bytes appended
// inside the writer's own transaction (Append) to a staging table, with the
// writer's transaction id. One integrator per database (Log.Run, elected
// with a session advisory lock; the row lock on audit_integrator keeps any
// other in line) takes, in batches, the staged rows of every transaction
// older than the oldest one still running, in (xid, id) order, so that no
// late commit can land behind an index already given: leaves get dense
// indices 0..n-1, the RFC 6962 tree grows (every complete node stored, so a
// proof costs one query), and a C2SP checkpoint signed as a note with
// Ed25519 is stored with them at most every CheckpointInterval.
//
// Log also serves entries, inclusion and consistency proofs; Verify
// recomputes the whole log from the entries' bytes and checks every
// checkpoint; VerifyRemote checks a live log against a checkpoint saved
// earlier through the public HTTP API only. The log's tables reject UPDATE,
// DELETE and TRUNCATE by trigger (migration 00002).
//
// The package knows nothing of appeals: an entry is bytes plus a type, an
// actor and a subject.
package audit
