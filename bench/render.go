package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
)

// runRender redraws the chart and BENCHMARKS.md from a saved JSON report
// (-json-file), without measuring again: `compare render -in r.json -png
// ../docs/compare.png -md ../BENCHMARKS.md`.
func runRender(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	in := fs.String("in", "", "JSON report written by -json-file")
	pngPath := fs.String("png", "", "write the chart here")
	mdPath := fs.String("md", "", "write the Markdown report here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("render: -in is required")
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("render: %s: %w", *in, err)
	}
	if r.Config == nil {
		return fmt.Errorf("render: %s has no config", *in)
	}
	r.Targets = r.targets()
	if *pngPath != "" {
		if err := writeChartFile(*pngPath, &r); err != nil {
			return err
		}
	}
	if *mdPath != "" {
		return os.WriteFile(*mdPath, []byte(r.markdown(*mdPath, *pngPath)), 0o644)
	}
	fmt.Print(r.text())
	return nil
}
