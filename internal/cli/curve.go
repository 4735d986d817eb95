package cli

import (
	"flag"
	"strings"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/keys"
)

// CurveFlags are the CURVE flags of a client or worker binary:
// -curve-server-key FILE (the broker's public key) and -curve-secret-key
// FILE (this peer's secret key). They mirror GATE_CURVE_SERVER_KEY_FILE
// and GATE_CURVE_SECRET_KEY_FILE, which gate.SettingsFromEnv reads (with
// GATE_CURVE_SERVER_KEY and GATE_CURVE_SECRET_KEY holding the keys
// themselves); a flag wins over the environment.
type CurveFlags struct {
	server, secret string
}

// Register defines the flags on fs. It may be called for several flag
// sets (global flags repeated after a subcommand); they share the values.
func (c *CurveFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "curve-server-key", c.server,
		"file with the broker's CURVE public key; turns CURVE on with -curve-secret-key (env "+keys.EnvServerKey+"_FILE or "+keys.EnvServerKey+")")
	fs.StringVar(&c.secret, "curve-secret-key", c.secret,
		"file with this peer's CURVE secret key, see gatectl keygen (env "+keys.EnvSecretKey+"_FILE or "+keys.EnvSecretKey+")")
}

// Getenv wraps getenv so that gate.SettingsFromEnv sees the flags: a set
// flag replaces its _FILE variable and hides the variable holding the key
// itself. The flags are read at each call, so wrap before parsing.
func (c *CurveFlags) Getenv(getenv func(string) string) func(string) string {
	return func(name string) string {
		switch {
		case c.server != "" && name == keys.EnvServerKey+"_FILE":
			return c.server
		case c.server != "" && name == keys.EnvServerKey:
			return ""
		case c.secret != "" && name == keys.EnvSecretKey+"_FILE":
			return c.secret
		case c.secret != "" && (name == keys.EnvSecretKey || name == keys.EnvPublicKey || name == keys.EnvPublicKey+"_FILE"):
			return ""
		}
		return getenv(name)
	}
}

// Apply re-reads the CURVE configuration of s from getenv and the flags
// (for binaries that read their settings before parsing flags).
func (c *CurveFlags) Apply(s *gate.Settings, getenv func(string) string) error {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	curve, err := gate.CurveFromEnv(c.Getenv(getenv))
	if err != nil {
		return err
	}
	s.Curve = curve
	return nil
}

// WithoutCurve hides the GATE_CURVE_* variables from getenv. Binaries read
// their gate.Settings through it when the CURVE variables are not (or not
// yet) a client's or worker's keys: gate-broker's GATE_CURVE_SECRET_KEY is
// the server's own key, and gatectl keygen runs before the key files it
// names exist (gatectl reads them when it makes a client).
func WithoutCurve(getenv func(string) string) func(string) string {
	return func(name string) string {
		if strings.HasPrefix(name, "GATE_CURVE_") {
			return ""
		}
		return getenv(name)
	}
}
