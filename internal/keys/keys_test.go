package keys

import "testing"

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
