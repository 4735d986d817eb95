package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gaterpc/gate/internal/cli"
)

// stdin is what `-d -` reads (a variable for the tests).
var stdin io.Reader = os.Stdin

// maxData caps a -d document: far above what a shell passes in one
// argument (about 128 KiB), far below what would exhaust memory.
const maxData = 256 << 20

// readData returns the JSON document of -d: @FILE, - (stdin) or the value
// itself.
func readData(d string) ([]byte, error) {
	var r io.Reader
	src := "-d"
	switch {
	case d == "-":
		r, src = stdin, "stdin"
	case strings.HasPrefix(d, "@"):
		f, err := os.Open(d[1:])
		if err != nil {
			return nil, cli.UsageError{Err: fmt.Errorf("-d: %w", err)}
		}
		defer f.Close()
		r, src = f, d[1:]
	default:
		return []byte(d), nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxData+1))
	if err != nil {
		return nil, fmt.Errorf("-d: reading %s: %w", src, err)
	}
	if len(b) > maxData {
		return nil, cli.Usagef("-d: %s is larger than %d MiB", src, maxData>>20)
	}
	return b, nil
}

// parseData decodes a -d document. Two shapes are accepted:
//
//	[1, "two", {"$bytes": "AAE="}]                    positional arguments
//	{"args": [1, "two"], "kwargs": {"name": "gate"}}  both (either key may be absent)
//
// Values follow the command line's rules (integers stay integers,
// {"$bytes": base64} is bin).
func parseData(doc []byte) ([]any, map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, cli.Usagef("-d: not JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, cli.Usagef("-d: want one JSON document, found more after it")
	}
	const shape = `want [arg, ...] or {"args": [...], "kwargs": {...}}`
	switch v := v.(type) {
	case []any:
		args, err := fromJSON(v)
		if err != nil {
			return nil, nil, cli.Usagef("-d: %v", err)
		}
		return args.([]any), nil, nil
	case map[string]any:
		var args []any
		var kw map[string]any
		for k, e := range v {
			switch k {
			case "args":
				a, ok := e.([]any)
				if !ok {
					return nil, nil, cli.Usagef(`-d: "args" is not an array; %s`, shape)
				}
				args = a
			case "kwargs":
				m, ok := e.(map[string]any)
				if !ok {
					return nil, nil, cli.Usagef(`-d: "kwargs" is not an object; %s`, shape)
				}
				kw = m
			default:
				return nil, nil, cli.Usagef("-d: unexpected key %q; %s", k, shape)
			}
		}
		if _, err := fromJSON(args); err != nil {
			return nil, nil, cli.Usagef("-d: %v", err)
		}
		if _, err := fromJSON(kw); err != nil {
			return nil, nil, cli.Usagef("-d: %v", err)
		}
		return args, kw, nil
	}
	return nil, nil, cli.Usagef("-d: %s", shape)
}

// callArgs merges the arguments of -d (first) with the positional words
// (appended) and -kw pairs (they win over -d's kwargs).
func (a *app) callArgs(data string, words, kws []string) ([]any, map[string]any, error) {
	args, kw, err := parseArgs(words, kws)
	if err != nil || data == "" {
		return args, kw, err
	}
	doc, err := readData(data)
	if err != nil {
		return nil, nil, err
	}
	dargs, dkw, err := parseData(doc)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range kw {
		if dkw == nil {
			dkw = map[string]any{}
		}
		dkw[k] = v
	}
	return append(dargs, args...), dkw, nil
}

// output is where a call's results go: stdout as JSON lines, or -o FILE
// (- is stdout) where bytes results are written raw and others as JSON
// lines.
type output struct {
	w    io.Writer
	f    *os.File // the -o file, nil for stdout
	raw  bool     // -o given
	done bool
}

func (a *app) output(path string) (*output, error) {
	o := &output{w: a.stdout, raw: path != ""}
	if path == "" || path == "-" {
		return o, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-o: %w", err)
	}
	o.f, o.w = f, f
	return o, nil
}

// write writes one result: bytes as they are with -o, everything else as
// JSON (compact or indented) and a newline.
func (o *output) write(v any, compact bool) error {
	if b, ok := v.([]byte); ok && o.raw {
		_, err := o.w.Write(b)
		return err
	}
	b, err := marshal(v, compact)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.w, "%s\n", b)
	return err
}

// close closes the -o file once, reporting a failed write-back.
func (o *output) close() error {
	if o.f == nil || o.done {
		return nil
	}
	o.done = true
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}
