// Package deploy holds the deployment files of gate (Prometheus config and
// alert rules, Grafana provisioning) and the tests that validate them together
// with the repository's docker-compose.yml and Dockerfile. It has no API; see
// README.md for the stack and its ports.
package deploy
