package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// oldBroker answers internal-service requests on a ROUTER bound to tcp
// loopback the way a gaterpc 0.2.12 broker does: get_services and
// query_service work; anything else gets an AttributeError (SECURE=False)
// or, when secure, no answer at all. One goroutine owns the socket; it
// returns the frontend endpoint and stops at test cleanup.
func oldBroker(t *testing.T, secure bool) string {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := sock.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, err := sock.GetLastEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer sock.Close()
		poller := zmq.NewPoller()
		poller.Add(sock, zmq.POLLIN)
		for {
			select {
			case <-stop:
				return
			default:
			}
			polled, err := poller.Poll(20 * time.Millisecond)
			if err != nil || len(polled) == 0 {
				continue
			}
			frames, err := sock.RecvMessageBytes(0)
			if err != nil || len(frames) < 2 {
				continue
			}
			req, err := wire.ParseClientRequest(frames[1:])
			if err != nil {
				continue
			}
			fn, args, _, err := codec.DecodeRequestBody(req.Body)
			var body []byte
			switch {
			case err != nil || req.Service != wire.InternalService:
				body, _ = codec.EncodeException("ServiceUnAvailableError", "ServiceUnAvailableError()", "")
			case fn == "get_services":
				body, _ = codec.EncodeResult([]string{"demo", "Gate"})
			case fn == "query_service" && len(args) == 1:
				body, _ = codec.EncodeResult("an old demo")
			case secure:
				continue
			default:
				body, _ = codec.EncodeException("AttributeError", "AttributeError('Function not found: "+fn+"')", "")
			}
			out := append([][]byte{frames[0]}, wire.ClientReply{Service: req.Service, RequestID: req.RequestID, Body: [][]byte{body}}.Frames()...)
			_, _ = sock.SendMessage(out)
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return ep
}

// TestServicesOldBroker: against a broker without Gate.service_stats and
// Gate.get_interfaces (gaterpc 0.2.12), `services` lists names and
// descriptions, `services NAME` says what is missing, and `interfaces
// Gate` prints gatectl's own table of the broker's functions.
func TestServicesOldBroker(t *testing.T) {
	front := oldBroker(t, false)
	out, _, err := gatectl(t, front, "services")
	if err != nil || !regexp.MustCompile(`(?m)^SERVICE\s+DESCRIPTION$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^demo\s+an old demo$`).MatchString(out) || !regexp.MustCompile(`(?m)^Gate\s+the broker's internal service$`).MatchString(out) {
		t.Fatalf("services = %q, %v; want names and descriptions", out, err)
	}
	out, _, err = gatectl(t, front, "-json", "services")
	var rows []serviceRow
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 || rows[0].Description != "an old demo" || rows[0].Workers != nil {
		t.Fatalf("services -json = %q, %v", out, err)
	}
	_, _, err = gatectl(t, front, "services", "demo")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "Gate.service_stats") {
		t.Fatalf("services demo: %v, want exit 1 naming the missing extension", err)
	}
	out, _, err = gatectl(t, front, "interfaces", "Gate")
	if err != nil || !regexp.MustCompile(`(?m)^get_services\s`).MatchString(out) || strings.Contains(out, "service_stats") {
		t.Fatalf("interfaces Gate = %q, %v; want gatectl's table of 0.2.12's functions", out, err)
	}
}

// TestServicesOldSecureBroker: a 0.2.12 broker with SECURE=True never
// answers Gate.service_stats; `services` falls back after extWait and says
// so on stderr.
func TestServicesOldSecureBroker(t *testing.T) {
	defer func(d time.Duration) { extWait = d }(extWait)
	extWait = 200 * time.Millisecond
	front := oldBroker(t, true)
	out, errOut, err := gatectl(t, front, "services")
	if err != nil || !regexp.MustCompile(`(?m)^demo\s+an old demo$`).MatchString(out) || !strings.Contains(errOut, "unanswered within 200ms") {
		t.Fatalf("services = %q, stderr %q, %v; want names and descriptions, and a note", out, errOut, err)
	}
	if _, _, err := gatectl(t, front, "services", "demo"); exitCode(err) != 1 || !strings.Contains(err.Error(), "unanswered") {
		t.Fatalf("services demo: %v, want exit 1 saying the broker did not answer", err)
	}
	out, _, err = gatectl(t, front, "interfaces", "Gate")
	if err != nil || !regexp.MustCompile(`(?m)^get_services\s`).MatchString(out) {
		t.Fatalf("interfaces Gate = %q, %v; want gatectl's table of 0.2.12's functions", out, err)
	}
}
