// Package audit is Docket's tamper-evident log. Every change of state is one
// entry: exact JSON bytes appended inside the writer's own transaction
// (Append). An integrator later gives committed entries dense indices and
// grows an RFC 6962 Merkle tree whose signed checkpoints let anyone prove
// that history was never rewritten. The package knows nothing of appeals:
// an entry is bytes plus a type, an actor and a subject.
package audit
