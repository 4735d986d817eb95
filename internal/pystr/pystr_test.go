package pystr

import "testing"

func TestRepr(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "boom!", `'boom!'`},
		{"single quote", "it's", `"it's"`},
		{"both quotes", `it's "x"`, `'it\'s "x"'`},
		{"controls", "a\nb\tc\x01", `'a\nb\tc\x01'`},
		{"backslash", `a\b`, `'a\\b'`},
		{"unicode", "héllo", `'héllo'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Repr(tt.in); got != tt.want {
				t.Fatalf("Repr(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
