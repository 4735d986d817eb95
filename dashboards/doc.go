// Package dashboards generates the Grafana dashboards for gate from Go code.
//
// The dashboards (Overview, Broker, Workers) are built from a small typed model
// of the Grafana JSON in model.go; [All] returns them and [Marshal] renders the
// exact bytes committed as overview.json, broker.json and workers.json next to
// this file. Grafana provisions those files in the docker-compose stack (see
// deploy/grafana/provisioning).
//
// Regenerate after changing the generator (from the repository root):
//
//	make generate   # or: cd dashboards && go generate
//
// The directory is its own module, github.com/gaterpc/gate/dashboards: its
// tests need Prometheus' PromQL parser, which the library module
// github.com/gaterpc/gate must not require. It uses the library through
// `replace github.com/gaterpc/gate => ../`.
//
// The tests fail when the committed JSON drifts from the generator, when a
// panel lacks a unit or a description, when a query does not use
// $__rate_interval, when a latency panel has no exemplars, or when an
// expression does not parse with Prometheus' PromQL parser. The end-to-end
// test (e2e_test.go) evaluates every query against a real Prometheus scraping
// a real broker, demo worker and gatectl bench.
//
// Every metric the dashboards query is listed in [Metrics]; it is the contract
// with package telemetry.
package dashboards

//go:generate go run ./gen
