package telemetry

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReadBuildOverrides(t *testing.T) {
	saved := [3]string{version, revision, buildTime}
	t.Cleanup(func() { version, revision, buildTime = saved[0], saved[1], saved[2] })

	version, revision, buildTime = "", "", ""
	b := ReadBuild()
	if b.Version == "" || b.GoVersion != runtime.Version() {
		t.Fatalf("ReadBuild() = %+v, want a version and %s", b, runtime.Version())
	}

	version, revision, buildTime = "v1.2.3", "0123456789abcdef0123", "2026-12-02T00:18:03Z"
	b = ReadBuild()
	if b.Version != "v1.2.3" || b.Revision != "0123456789abcdef0123" || b.Time != "2026-12-02T00:18:03Z" || b.Modified {
		t.Fatalf("ReadBuild() with -X overrides = %+v", b)
	}
	s := b.String()
	for _, want := range []string{"v1.2.3 (revision 0123456789ab, 2026-12-02T00:18:03Z) go", runtime.GOOS + "/" + runtime.GOARCH, " libzmq 4."} {
		if !strings.Contains(s, want) {
			t.Errorf("Build.String() = %q, want it to contain %q", s, want)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(BuildInfo("worker", ""))
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("Gather = %v, %v", mfs, err)
	}
	m := mfs[0].GetMetric()[0]
	if labelValue(m, "version") != "v1.2.3" || labelValue(m, "revision") != "0123456789ab" {
		t.Errorf("gaterpc_build_info = %v, want the stamped version and revision", m)
	}
}

func TestBuildShortRevision(t *testing.T) {
	for _, tt := range []struct {
		b    Build
		want string
	}{
		{Build{}, ""},
		{Build{Revision: "abc"}, "abc"},
		{Build{Revision: "6b7325d6c10319cb1a2c311b87de0e225d3efe7f", Modified: true}, "6b7325d6c103-dirty"},
	} {
		if got := tt.b.ShortRevision(); got != tt.want {
			t.Errorf("%+v.ShortRevision() = %q, want %q", tt.b, got, tt.want)
		}
	}
}
