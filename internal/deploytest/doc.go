// Package deploytest checks the container set-up offline: the machine that
// runs `make test` has no Docker engine, so docker-compose.yml is loaded
// with the Compose specification's own loader (compose-go) and the
// Dockerfile and .dockerignore are read for the properties that a first
// start depends on. `make docker-test` starts the stack where Docker runs.
//
// It also checks the documentation offline: every relative link in
// README.md and docs/*.md names a file or directory of the repository, and
// every link to a heading names one the page has (TestDocLinksResolve).
package deploytest
