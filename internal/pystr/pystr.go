// Package pystr renders text the way Python shows it, for the repr element
// of exception triples (docs/wire-protocol.md section 5) and for key files
// that share Python's comment convention.
package pystr

import (
	"fmt"
	"strings"
)

// Repr renders s like Python's repr of a str (single quotes preferred):
// Repr("boom!") is 'boom!' and Repr("it's") is "it's".
func Repr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, q)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20 || c == 0x7f:
			b = append(b, fmt.Sprintf("\\x%02x", c)...)
		default:
			b = append(b, c)
		}
	}
	return string(append(b, q))
}

// KeyLen is the length of a CURVE key in Z85 text.
const KeyLen = 40

// IsComment reports whether a line of a key file or allow-list is blank or
// a comment: its first word starts with '#' and is not KeyLen characters
// long ('#' is a Z85 character: a 40-character word is checked as a key,
// so a mangled key is reported rather than skipped).
func IsComment(line string) bool {
	f := strings.Fields(line)
	return len(f) == 0 || (strings.HasPrefix(f[0], "#") && len(f[0]) != KeyLen)
}
