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

func TestIsComment(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"", true},
		{"   ", true},
		{"# a comment", true},
		{"#" + "0123456789012345678901234567890123456789"[1:], false}, // 40 chars: a key
		{"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", false},
	}
	for _, tt := range tests {
		if got := IsComment(tt.line); got != tt.want {
			t.Errorf("IsComment(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}
