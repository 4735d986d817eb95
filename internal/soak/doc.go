// Package soak runs gate's long-running checks with real processes on
// 127.0.0.1: gate-broker and gate-demo-worker binaries, clients, and the
// raw peers of cmd/gate-soak.
//
//   - Run: a soak of echo calls and count streams, sampling the RSS (from
//     /proc) and goroutines (go_goroutines of each process's /metrics)
//     of every process, failing on any error or on unbounded growth.
//   - Scale: many idle workers and clients on one broker; the broker's
//     idle CPU (from /proc/<pid>/stat) and RSS.
//   - Churn: cycles of many clients connecting, calling and leaving; the
//     broker's RSS after each cycle.
//
// make soak, make scale and make churn run the full sizes through
// cmd/gate-soak; the package's tests run small sizes in the normal test
// run (docs/soak.md lists the figures).
package soak
