package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gaterpc/gate/internal/cli"
)

// bytesKey marks a msgpack bin value in JSON: {"$bytes": "<base64>"}. The
// same object given as an argument is sent as bin.
const bytesKey = "$bytes"

// parseArg turns a command-line word into an argument value: valid JSON is
// decoded (integers as int64, other numbers as float64, {"$bytes": b64}
// as []byte), anything else is the word itself as a string.
func parseArg(s string) (any, error) {
	if !json.Valid([]byte(s)) {
		return s, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return s, nil
	}
	return fromJSON(v)
}

func fromJSON(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, nil
		}
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return n, nil
		}
		return v.Float64()
	case []any:
		for i, e := range v {
			var err error
			if v[i], err = fromJSON(e); err != nil {
				return nil, err
			}
		}
		return v, nil
	case map[string]any:
		if b, ok := v[bytesKey].(string); ok && len(v) == 1 {
			raw, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", bytesKey, err)
			}
			return raw, nil
		}
		for k, e := range v {
			var err error
			if v[k], err = fromJSON(e); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	return v, nil
}

// parseArgs parses positional words and key=value pairs.
func parseArgs(words, kws []string) ([]any, map[string]any, error) {
	args := make([]any, 0, len(words))
	for _, w := range words {
		v, err := parseArg(w)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, v)
	}
	var kw map[string]any
	for _, p := range kws {
		k, val, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, nil, cli.Usagef("-kw %q: want key=value", p)
		}
		v, err := parseArg(val)
		if err != nil {
			return nil, nil, err
		}
		if kw == nil {
			kw = map[string]any{}
		}
		kw[k] = v
	}
	return args, kw, nil
}

// toJSON converts a decoded result into something encoding/json renders:
// []byte becomes {"$bytes": base64}, times become RFC 3339 strings and
// non-finite floats the strings "NaN", "+Inf", "-Inf". Maps already have
// string keys (the codec converts other keys as Python's str() does).
func toJSON(v any) any {
	switch v := v.(type) {
	case []byte:
		return map[string]any{bytesKey: base64.StdEncoding.EncodeToString(v)}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = toJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = toJSON(e)
		}
		return out
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case float64:
		return finite(v)
	case float32:
		return finite(float64(v))
	}
	return v
}

func finite(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// marshal renders v as JSON: indented unless compact, without HTML
// escaping, without a trailing newline.
func marshal(v any, compact bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if !compact {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(toJSON(v)); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
