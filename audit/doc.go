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
// checkpoint; OpenCheckpoint opens a checkpoint handed in from outside. The
// package speaks no HTTP: checking a live log against a checkpoint saved
// earlier is a client's job, through the public API only, and lives with
// the client (api/client, VerifyRemote). The log's tables reject UPDATE,
// DELETE and TRUNCATE by trigger (migration 00002).
//
// Staging in the writer's statement. A hot write may make its change and
// stage its entry in one statement (StageAfter for one entry, StageChanged
// for a batch); the writer's part and the log's take their placeholders
// from one Params, in order, so neither package counts the other's, and
// the arguments follow in the same order (the writer's, then StageArgs'
// or StageArrays').
//
// One log, one key, no forks. The log's identity, its origin and verifier
// key, is recorded with the first checkpoint (audit_log_identity, migration
// 00007, insert-only like the rest) and never changes; Claim refuses a
// signer that is not it, and a log older than the table adopts the
// identity of its latest checkpoint if this signer's key verifies it.
// Before it signs, and whenever it (re)loads the tree, the integrator
// proves that the tree extends every checkpoint it trusts: the database's
// latest (signature checked), the pin, and any Witness (the interface
// through which independent witnesses will plug in). The pin
// (Options.PinFile, PinFileName in serve's data directory) is the latest
// checkpoint this data directory signed or verified (at takeover, or
// served by LatestCheckpoint), written atomically and only after the
// checkpoint committed, so that it is never ahead of the log; it is what
// still catches a rewrite whose author also deleted the checkpoints. A
// proof is O(log n) stored nodes from one query (proof.VerifyConsistency);
// a trusted checkpoint larger than the tree is a truncation. On a failure
// (ForkError, IdentityError) the integrator halts for good: it signs
// nothing, keeps the election so that no standby signs the fork instead,
// and Status says why until the process is restarted.
//
// Verify also takes checkpoints saved outside (VerifyOptions.Saved, the pin
// among them) and fails on a log smaller than one or with another root at
// its size, on leaves with no checkpoint at all, and on entries left
// without a checkpoint for longer than MaxUnsignedAge.
//
// A key that leaks cannot be revoked from a log whose identity is fixed, so
// the log ends and a successor starts under a new origin and key: Succeed
// makes the old log's final trusted checkpoint the successor's first entry
// (EntryPredecessor), so that every checkpoint of the new log commits to
// where the old one ended.
//
// No hidden knowledge. The package knows nothing of appeals: it stores
// bytes, a type, an actor, a subject and whatever index keys the domain
// hands it, and knows no domain field name; the one field of an entry's
// bytes it reads is its own "time", for exports' time bounds. What an
// export may select an entry by (for appeals, its advertiser and its
// policy) the writer says when it stages it, as Entry.Keys, name to
// value; the names are the writer's (appeals defines them, and api and
// the CLI map their advertiser and policy filters onto them). Keys travel
// with the entry through every staging path (Append and AppendQuery,
// StageArgs into StageAfter, StageArrays into StageChanged), are stored
// beside its bytes in audit_staging.keys, and are copied lazily into the
// export index (audit_export_keys, by RefreshExportKeys: one (name, value,
// idx) row per key of a leaf, whose primary key is the range a filtered
// export scans in index order). They are not part of the entry's bytes,
// so not of its leaf hash: they are an index, as trustworthy as the
// database, which Verify does not check, and they leave every existing
// leaf and checkpoint as it was (migration 00011 backfilled the keys of
// the entries staged before them).
package audit
