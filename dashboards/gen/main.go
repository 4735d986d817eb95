// Command gen writes the gate Grafana dashboards as JSON files.
//
// It is run by `go generate ./dashboards` (the working directory is then the
// dashboards package) and writes one file per dashboard into -out.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gaterpc/gate/dashboards"
)

func main() {
	out := flag.String("out", ".", "directory to write the dashboard JSON files into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	for _, f := range dashboards.All() {
		b, err := dashboards.Marshal(f.Dashboard)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.Name, err)
		}
	}
	return nil
}
