package telemetry

import (
	"fmt"
	"runtime"
	"runtime/debug"

	zmq "github.com/pebbe/zmq4"
	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo returns a collector of gaterpc_build_info{version, goversion,
// libzmq_version, role} = 1. An empty version is taken from the main
// module's build info ("(devel)" when unknown). The caller registers it.
func BuildInfo(role, version string) prometheus.Collector {
	if version == "" {
		version = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	major, minor, patch := zmq.Version()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gaterpc_build_info",
		Help: "Build information of this gaterpc process; the value is always 1.",
		ConstLabels: prometheus.Labels{
			"version":        version,
			"goversion":      runtime.Version(),
			"libzmq_version": fmt.Sprintf("%d.%d.%d", major, minor, patch),
			"role":           role,
		},
	})
	g.Set(1)
	return g
}
