package gate

import "testing"

// TestWithSecure: WithSecure(true) silences unknown methods even over
// WithSettings with Secure false; WithSecure(false) restores the
// exception reply.
func TestWithSecure(t *testing.T) {
	for _, secure := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[secure], func(t *testing.T) {
			b := newFakeBackend(t)
			svc := mustService(t, "S")
			mustOK(t, svc.Register("echo", echoMethod))
			s := DefaultSettings()
			s.Secure = !secure
			w := startWorker(t, b, svc, WithSecure(secure), WithSettings(s))
			b.expectReady()
			b.request([]byte("c"), []byte("missing"), []byte("\xa4nope"))
			b.request([]byte("c"), []byte("ok"), []byte("\xa4echo"))
			if secure {
				// No reply for the unknown method, proven by order: once
				// no call is in flight, a reply to "missing" would be
				// queued ahead of the reply to a later request.
				if _, exc := decodeSingle(t, b.reply("ok")); exc != nil {
					t.Fatalf("secure: echo raised %v", exc)
				}
				waitCond(t, "no call in flight", func() bool { return w.inflightCount() == 0 })
				b.request([]byte("c"), []byte("ok2"), []byte("\xa4echo"))
				if _, exc := decodeSingle(t, b.reply("ok2")); exc != nil {
					t.Fatalf("secure: echo raised %v", exc)
				}
				return
			}
			m := b.next(workerRecvTimeout)
			_, exc := decodeSingle(t, m)
			if string(m.RequestID) == "missing" && (exc == nil || exc.Class != "AttributeError") {
				t.Fatalf("not secure: reply to missing = %v, want AttributeError", exc)
			}
			if string(m.RequestID) == "ok" { // replies may come in any order
				m = b.next(workerRecvTimeout)
				if _, exc := decodeSingle(t, m); string(m.RequestID) != "missing" || exc == nil || exc.Class != "AttributeError" {
					t.Fatalf("not secure: second reply %s, exception %v, want AttributeError for missing", m.RequestID, exc)
				}
			}
		})
	}
}
