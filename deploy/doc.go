// Package deploy holds the deployment files of gate (Prometheus config and
// alert rules, Grafana provisioning) and the tests that validate them together
// with the repository's docker-compose.yml and Dockerfile. It has no API; see
// README.md for the stack and its ports.
//
// The directory is its own module, github.com/gaterpc/gate/deploy: its tests
// need compose-go and Prometheus' PromQL parser, which the library module
// github.com/gaterpc/gate must not require. Run them from this directory
// (go test .) or with make test from the repository root.
package deploy
