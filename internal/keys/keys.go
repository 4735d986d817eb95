// Package keys holds the text conventions of CURVE keys that package gate,
// the broker and the binaries share: the key length, comment lines in key
// files and allow-lists, and the environment variables gate.CurveFromEnv
// reads.
package keys

import "strings"

// Len is the length of a CURVE key in Z85 text (32 bytes of key).
const Len = 40

// Environment variables read by gate.CurveFromEnv. A *_FILE variable
// names a file holding the key instead.
const (
	EnvServerKey = "GATE_CURVE_SERVER_KEY" // the broker's public key
	EnvSecretKey = "GATE_CURVE_SECRET_KEY" // this peer's secret key; the public key is derived from it
	EnvPublicKey = "GATE_CURVE_PUBLIC_KEY" // optional: checked against the key derived from the secret
)

// IsComment reports whether a line of a key file or allow-list is blank or
// a comment: its first word starts with '#' and is not Len characters long
// ('#' is a Z85 character: a 40-character word is checked as a key, so a
// mangled key is reported rather than skipped).
func IsComment(line string) bool {
	f := strings.Fields(line)
	return len(f) == 0 || (strings.HasPrefix(f[0], "#") && len(f[0]) != Len)
}
