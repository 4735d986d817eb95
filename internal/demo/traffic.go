package demo

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gaterpc/gate/gate"
)

// TrafficMix is the light load Traffic generates, by call number n
// (0, 1, 2, ...): every 40th call is huge(HugeSize), every 20th fail,
// every 5th a count(10) stream, and the rest echo — so dashboards show
// errors, streams and huge data as well as plain calls.
const (
	HugeSize    = 1 << 20
	StreamCount = 10
)

// Traffic calls service's methods through c about rate times per second
// until ctx is done, logging unexpected failures at Warn (fail's
// ValueError is expected). Each call is bounded by timeout. It returns
// the number of calls made when ctx is done and no call is running.
func Traffic(ctx context.Context, c *gate.Client, service string, rate float64, timeout time.Duration, log *slog.Logger) (calls int) {
	if rate <= 0 {
		return 0
	}
	if log == nil {
		log = slog.Default()
	}
	interval := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
		method, err := trafficCall(ctx, c, service, n, timeout)
		if err != nil && !ended(ctx) {
			log.LogAttrs(ctx, slog.LevelWarn, "demo traffic call failed",
				slog.String("rpc.method", service+"/"+method), slog.String("error", err.Error()))
		}
	}
}

func trafficCall(ctx context.Context, c *gate.Client, service string, n int, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	svc := c.Service(service)
	switch {
	case n%40 == 39:
		_, err := svc.Call(ctx, "huge", HugeSize)
		return "huge", err
	case n%20 == 19:
		_, err := svc.Call(ctx, "fail", "demo traffic: an expected failure")
		var ge *gate.Error
		if errors.As(err, &ge) && ge.Class == "ValueError" {
			err = nil
		}
		return "fail", err
	case n%5 == 4:
		s, err := c.Stream(ctx, service+".count", StreamCount)
		if err != nil {
			return "count", err
		}
		for _, err := range s.All() {
			if err != nil {
				return "count", err
			}
		}
		return "count", nil
	}
	_, err := svc.Call(ctx, "echo", "hello", n, gate.Kwargs{"from": "demo traffic"})
	return "echo", err
}

// ended reports whether ctx is done or past its deadline (a call's ctx,
// derived from it, may time out a moment before ctx itself is marked
// done).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
