// Package archtest holds the guard on the package map (README, "How it is
// built"): a test that reads the module's imports from go list and fails
// when a package imports against the intended direction,
//
//	cmd/docket -> api -> appeals -> appeals/groupcommit
//	                         \-> audit
//	notify -> audit
//	migrations: a leaf
//	internal/*: support, imported only by tests, cmd and each other
//
// or when a domain package (appeals, its sub-packages, audit, notify)
// imports net/http. A package the table does not know fails too, so a new
// package is placed on the map when it is made. It has no code of its own.
package archtest
