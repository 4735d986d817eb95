// Package e2e holds the end-to-end telemetry tests: a real client, broker
// and worker over inproc ZeroMQ sockets, instrumented with the telemetry
// middleware (client, worker) and observers (broker), checked for one trace per call with the full span tree and
// for the metrics each hop exports. It has no non-test code.
package e2e
