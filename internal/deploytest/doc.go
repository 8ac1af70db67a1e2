// Package deploytest checks the container set-up offline: the machine that
// runs `make test` has no Docker engine, so docker-compose.yml is loaded
// with the Compose specification's own loader (compose-go) and the
// Dockerfile and .dockerignore are read for the properties that a first
// start depends on. `make docker-test` starts the stack where Docker runs.
package deploytest
