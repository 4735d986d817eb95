// Package faults holds the fault battery: tests that run the real
// gate-broker and gate-demo-worker binaries on loopback, with a gate.Client
// in the test process, and break them the way production does. A worker is
// SIGKILLed mid-call, mid-stream and mid-HugeData, or SIGSTOPped and
// resumed; the broker is SIGKILLed and restarted on the same ports; the
// links client↔broker and broker↔worker are stalled or cut through a small
// in-test TCP proxy; a client process vanishes mid-stream. Each case checks
// which error the caller gets, within how many heartbeat intervals (the
// measured times are logged), that nothing stays pending or in flight, and
// that no call is lost silently.
//
// TestMain builds the two binaries once. The broker restart waits 2 s; set
// GATE_FAULTS_LONG=1 to also run the 10 s restart. The package has no
// non-test code: it exists for its tests (docs/reliability.md lists the
// measured detection and recovery times).
package faults
