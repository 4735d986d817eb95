package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/cli"
)

// extWait bounds the wait for an answer to a gate extension of the
// internal service (Gate.service_stats): a gate broker answers at once, a
// gaterpc 0.2.12 broker with SECURE=True never does.
var extWait = 3 * time.Second

// serviceRow is one service in `services` output (-json prints these).
// Against a broker without Gate.service_stats (gaterpc 0.2.12) only
// Name, Description and Internal are set and Workers is null.
type serviceRow struct {
	Name          string            `json:"name"`
	Description   string            `json:"description"`
	Internal      bool              `json:"internal,omitempty"`
	Capacity      int               `json:"capacity"`
	InFlight      int               `json:"in_flight"`
	Queued        int               `json:"queued"`
	OldestQueuedS float64           `json:"oldest_queued_s"`
	Calls         uint64            `json:"calls"`
	Errors        uint64            `json:"errors"`
	Outcomes      map[string]uint64 `json:"outcomes,omitempty"`
	Stalled       int               `json:"stalled"`
	Workers       []workerRow       `json:"workers"`
}

// workerRow is one worker of a service (gate.WorkerStats, id in hex).
type workerRow struct {
	ID        string  `json:"id"`
	Key       string  `json:"key,omitempty"`
	Protocol  string  `json:"protocol"`
	Capacity  int     `json:"capacity"`
	InFlight  int     `json:"in_flight"`
	LastSeenS float64 `json:"last_seen_s"`
	Stalled   bool    `json:"stalled"`
}

func rowOf(s gate.ServiceStats) serviceRow {
	r := serviceRow{
		Name: s.Name, Description: s.Description, Capacity: s.Capacity, InFlight: s.InFlight,
		Queued: s.Queued, OldestQueuedS: s.OldestQueuedSeconds, Calls: s.Calls, Errors: s.Errors,
		Outcomes: s.Outcomes, Stalled: s.Stalled, Workers: make([]workerRow, 0, len(s.Workers)),
	}
	for _, w := range s.Workers {
		r.Workers = append(r.Workers, workerRow{
			ID: hex.EncodeToString(w.ID), Key: w.Key, Protocol: w.Protocol, Capacity: w.Capacity,
			InFlight: w.InFlight, LastSeenS: w.LastSeenSeconds, Stalled: w.Stalled,
		})
	}
	return r
}

// services implements `services [SERVICE]`: a table of every service
// (Gate.service_stats), or one service with its workers.
func (a *app) services(args []string) error {
	f := a.flags("services")
	fs := f.FS
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gatectl services [SERVICE]\n\n"+
			"Without SERVICE: one row per service (workers, stalled workers, capacity,\n"+
			"requests in flight and queued, age of the oldest queued request, calls and\n"+
			"errors since the broker started). With SERVICE: its counters by outcome and\n"+
			"one row per worker (routing id, protocol, capacity, in flight, time since\n"+
			"the broker last heard from it, stalled, CURVE public key).\n\n")
		fs.PrintDefaults()
	}
	pos, err := f.ParseInterspersed(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		fs.SetOutput(a.stderr)
		fs.Usage()
		return cli.Usagef("services: want at most 1 argument, got %q", pos)
	}
	c, closeClient, err := a.client(false, a.internalMethods())
	if err != nil {
		return err
	}
	defer closeClient()
	ctx, cancel := a.callCtx()
	defer cancel()
	internal := a.settings.InternalService
	if len(pos) == 1 && pos[0] == internal {
		return fmt.Errorf("%s is the broker's internal service: see gatectl interfaces %s and gatectl info", internal, internal)
	}
	// A gaterpc 0.2.12 broker answers Gate.service_stats with an
	// AttributeError, or with SECURE=True (its default) not at all: wait
	// for the answer at most extWait, then fall back.
	sctx, scancel := context.WithTimeout(ctx, extWait)
	stats, err := c.ServiceStats(sctx, pos...)
	scancel()
	var ge *gate.Error
	unanswered := errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	if err != nil && (unanswered || errors.As(err, &ge) && ge.Class == "AttributeError") {
		why := "no Gate.service_stats"
		if unanswered {
			why = fmt.Sprintf("Gate.service_stats unanswered within %v", extWait)
		}
		if len(pos) == 1 {
			return fmt.Errorf("the broker at %s does not report per-service statistics (%s): gatectl services without a name lists what it knows", a.g.broker, why)
		}
		fmt.Fprintf(a.stderr, "gatectl: the broker does not report per-service statistics (%s; a gaterpc 0.2.12 broker): names and descriptions only\n", why)
		return a.servicesBasic(ctx, c)
	}
	if err != nil {
		return a.remote(err)
	}
	if len(pos) == 1 {
		if len(stats) == 0 {
			return fmt.Errorf("%w: %q", gate.ErrNoService, pos[0])
		}
		return a.serviceDetail(rowOf(stats[0]))
	}
	rows := make([]serviceRow, 0, len(stats)+1)
	for _, s := range stats {
		rows = append(rows, rowOf(s))
	}
	rows = append(rows, serviceRow{Name: internal, Description: "the broker's internal service", Internal: true})
	if a.g.json {
		return a.printJSON(rows, true)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tWORKERS\tSTALLED\tCAPACITY\tIN_FLIGHT\tQUEUED\tOLDEST\tCALLS\tERRORS\tDESCRIPTION")
	for _, r := range rows {
		if r.Internal {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", r.Name, r.Description)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%s\n", r.Name, len(r.Workers), r.Stalled, r.Capacity,
			r.InFlight, r.Queued, seconds(r.OldestQueuedS), r.Calls, r.Errors, r.Description)
	}
	return tw.Flush()
}

// serviceDetail prints one service and its workers.
func (a *app) serviceDetail(r serviceRow) error {
	if a.g.json {
		return a.printJSON(r, true)
	}
	var outcomes []string
	for _, k := range sortedKeys(r.Outcomes) {
		outcomes = append(outcomes, k+" "+strconv.FormatUint(r.Outcomes[k], 10))
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "service\t%s\n", r.Name)
	fmt.Fprintf(tw, "description\t%s\n", r.Description)
	fmt.Fprintf(tw, "workers\t%d (%d stalled), capacity %d\n", len(r.Workers), r.Stalled, r.Capacity)
	fmt.Fprintf(tw, "in flight\t%d\n", r.InFlight)
	fmt.Fprintf(tw, "queued\t%d (oldest %s)\n", r.Queued, seconds(r.OldestQueuedS))
	fmt.Fprintf(tw, "calls\t%d, errors %d\n", r.Calls, r.Errors)
	if len(outcomes) > 0 {
		fmt.Fprintf(tw, "outcomes\t%s\n", strings.Join(outcomes, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tPROTOCOL\tCAPACITY\tIN_FLIGHT\tLAST_SEEN\tSTALLED\tKEY")
	for _, w := range r.Workers {
		key := w.Key
		if key == "" {
			key = "-"
		}
		stalled := "no"
		if w.Stalled {
			stalled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", w.ID, w.Protocol, w.Capacity, w.InFlight, seconds(w.LastSeenS), stalled, key)
	}
	return tw.Flush()
}

// servicesBasic lists names and descriptions only (get_services and
// query_service), for a broker without Gate.service_stats.
func (a *app) servicesBasic(ctx context.Context, c *gate.Client) error {
	names, err := c.Services(ctx)
	if err != nil {
		return a.remote(err)
	}
	internal := a.settings.InternalService
	rows := make([]serviceRow, 0, len(names))
	for _, n := range names {
		r := serviceRow{Name: n, Internal: n == internal}
		if r.Internal {
			r.Description = "the broker's internal service"
		} else if d, err := c.QueryService(ctx, n); err == nil {
			r.Description = d
		} else if errors.Is(err, gate.ErrNoService) {
			r.Description = "(no worker)"
		} else {
			return a.remote(err)
		}
		rows = append(rows, r)
	}
	if a.g.json {
		return a.printJSON(rows, true)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.Name, r.Description)
	}
	return tw.Flush()
}

// seconds renders a duration in seconds the way Go prints durations,
// rounded to the millisecond ("0s" for none).
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
