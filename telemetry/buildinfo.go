package telemetry

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	zmq "github.com/pebbe/zmq4"
	"github.com/prometheus/client_golang/prometheus"
)

// Link-time overrides of the build description. The go command stamps the
// module version and the VCS revision and time into every binary it builds
// inside a repository (`go build`, `go install`; `go run` omits the VCS
// part); these win over that when set, for builds without VCS data (a
// source tarball, a container build without .git):
//
//	go build -ldflags "-X github.com/gaterpc/gate/telemetry.version=v1.2.3 \
//	  -X github.com/gaterpc/gate/telemetry.revision=$(git rev-parse HEAD) \
//	  -X github.com/gaterpc/gate/telemetry.buildTime=$(date -u +%FT%TZ)" ./cmd/...
var (
	version   string
	revision  string
	buildTime string
)

// Build describes the running binary.
type Build struct {
	// Version is the main module's version ("v1.2.3", a pseudo-version
	// such as "v0.0.0-20261202001803-6b7325d6c103+dirty", or "(devel)").
	Version string
	// Revision is the VCS commit, "" when unknown.
	Revision string
	// Time is the commit time (RFC 3339), "" when unknown.
	Time string
	// Modified reports uncommitted changes in the built tree.
	Modified bool
	// GoVersion is the toolchain that built the binary ("go1.26.0").
	GoVersion string
}

// ReadBuild returns the running binary's description: the link-time
// overrides, else debug.ReadBuildInfo (module version, vcs.revision,
// vcs.time, vcs.modified), else "(devel)". It is safe for concurrent use.
func ReadBuild() Build {
	b := Build{Version: "(devel)", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	if revision != "" {
		b.Revision, b.Modified = revision, false
	}
	if buildTime != "" {
		b.Time = buildTime
	}
	return b
}

// ShortRevision is the first 12 hex digits of Revision, with "-dirty"
// when Modified; "" when the revision is unknown.
func (b Build) ShortRevision() string {
	r := b.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if r != "" && b.Modified {
		r += "-dirty"
	}
	return r
}

// String is the one-line form printed by `-version`:
// "v1.2.3 (revision 6b7325d6c103, 2026-12-02T00:18:03Z) go1.26.0 linux/amd64 libzmq 4.3.4".
func (b Build) String() string {
	var sb strings.Builder
	sb.WriteString(b.Version)
	var vcs []string
	if r := b.ShortRevision(); r != "" {
		vcs = append(vcs, "revision "+r)
	}
	if b.Time != "" {
		vcs = append(vcs, b.Time)
	}
	if len(vcs) > 0 {
		sb.WriteString(" (" + strings.Join(vcs, ", ") + ")")
	}
	fmt.Fprintf(&sb, " %s %s/%s libzmq %s", b.GoVersion, runtime.GOOS, runtime.GOARCH, libzmqVersion())
	return sb.String()
}

func libzmqVersion() string {
	major, minor, patch := zmq.Version()
	return fmt.Sprintf("%d.%d.%d", major, minor, patch)
}

// BuildInfo returns a collector of gaterpc_build_info{version, revision,
// goversion, libzmq_version, role} = 1, from [ReadBuild] (revision
// "unknown" when the build has none). A non-empty version overrides the
// build's. The caller registers it.
func BuildInfo(role, version string) prometheus.Collector {
	b := ReadBuild()
	if version != "" {
		b.Version = version
	}
	rev := b.ShortRevision()
	if rev == "" {
		rev = "unknown"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gaterpc_build_info",
		Help: "Build information of this gaterpc process; the value is always 1.",
		ConstLabels: prometheus.Labels{
			"version":        b.Version,
			"revision":       rev,
			"goversion":      b.GoVersion,
			"libzmq_version": libzmqVersion(),
			"role":           role,
		},
	})
	g.Set(1)
	return g
}
