package gate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/keys"
)

// ErrNoCurve is returned when CURVE is asked for but the libzmq this
// program is linked with was built without it (zmq.HasCurve() is false:
// rebuild libzmq with libsodium or its tweetnacl, as Debian's libzmq5 is).
var ErrNoCurve = errors.New("gate: libzmq was built without CURVE support")

// Curve configures CURVE encryption and authentication (ZMTP CURVE, RFC
// 26) on the socket of a client or worker. The zero value means plain
// TCP (no encryption, no authentication), which 0.2.12 brokers and the
// default gate broker expect.
//
// With ServerKey set the peer encrypts its connection and proves that it
// holds SecretKey; it talks only to a broker holding the secret key of
// ServerKey. Keys are Z85 text of 40 characters. The value prints
// and logs with the secret key redacted.
type Curve struct {
	ServerKey string // the broker's public key
	PublicKey string // this peer's public key; "" derives it from SecretKey
	SecretKey string // this peer's secret key
}

// Enabled reports whether c asks for CURVE.
func (c Curve) Enabled() bool { return c != Curve{} }

// String describes c without its secret key.
func (c Curve) String() string {
	if !c.Enabled() {
		return "plain"
	}
	return "curve(server=" + c.ServerKey + " public=" + c.PublicKey + ")"
}

// LogValue logs c without its secret key.
func (c Curve) LogValue() slog.Value { return slog.StringValue(c.String()) }

// resolve validates c and fills PublicKey from SecretKey.
func (c Curve) resolve() (Curve, error) {
	if !c.Enabled() {
		return c, nil
	}
	if !zmq.HasCurve() {
		return c, ErrNoCurve
	}
	if c.ServerKey == "" || c.SecretKey == "" {
		return c, fmt.Errorf("%w: Curve needs ServerKey and SecretKey (public key %q)", ErrInvalidOption, c.PublicKey)
	}
	if err := CheckKey(c.ServerKey); err != nil {
		return c, fmt.Errorf("Curve.ServerKey: %w", err)
	}
	kp, err := KeyPairFromSecret(c.SecretKey)
	if err != nil {
		return c, fmt.Errorf("Curve.SecretKey: %w", err)
	}
	if c.PublicKey != "" && c.PublicKey != kp.Public {
		return c, fmt.Errorf("%w: Curve.PublicKey %s does not belong to the secret key (its public key is %s)",
			ErrInvalidOption, c.PublicKey, kp.Public)
	}
	c.PublicKey = kp.Public
	return c, nil
}

// WithCurve turns on CURVE for a client or worker: it connects to a broker
// whose public key is serverKey and identifies itself with own. The
// broker must run with CURVE (broker.WithCurve) and list own.Public in
// its allow-list. It sets [Settings].Curve; invalid keys make NewClient
// or NewWorker fail with an error wrapping [ErrInvalidOption] (or
// [ErrNoCurve]).
func WithCurve(serverKey string, own KeyPair) CommonOption {
	return edit(func(s *Settings) {
		s.Curve = Curve{ServerKey: serverKey, PublicKey: own.Public, SecretKey: own.Secret}
	})
}

// applyCurve sets the CURVE client options of s (a new, unconnected
// socket); with the zero Curve it does nothing.
func applyCurve(s *zmq.Socket, c Curve) error {
	if !c.Enabled() {
		return nil
	}
	c, err := c.resolve()
	if err != nil {
		return err
	}
	if err := s.SetCurveServerkey(c.ServerKey); err != nil {
		return fmt.Errorf("gate: CURVE server key: %w", err)
	}
	if err := s.SetCurvePublickey(c.PublicKey); err != nil {
		return fmt.Errorf("gate: CURVE public key: %w", err)
	}
	if err := s.SetCurveSecretkey(c.SecretKey); err != nil {
		return fmt.Errorf("gate: CURVE secret key: %w", err)
	}
	return nil
}

// KeyPair is a CURVE key pair in Z85 text. Keep Secret secret: it prints
// and logs redacted.
type KeyPair struct {
	Public string
	Secret string
}

// String shows the public key only.
func (k KeyPair) String() string { return "KeyPair(public=" + k.Public + ")" }

// LogValue logs the public key only.
func (k KeyPair) LogValue() slog.Value { return slog.StringValue(k.String()) }

// NewKeyPair generates a CURVE key pair. It returns [ErrNoCurve] when
// libzmq has no CURVE support.
func NewKeyPair() (KeyPair, error) {
	if !zmq.HasCurve() {
		return KeyPair{}, ErrNoCurve
	}
	pub, sec, err := zmq.NewCurveKeypair()
	if err != nil {
		return KeyPair{}, fmt.Errorf("gate: new CURVE key pair: %w", err)
	}
	return KeyPair{Public: pub, Secret: sec}, nil
}

// KeyPairFromSecret checks secret and derives its public key.
func KeyPairFromSecret(secret string) (KeyPair, error) {
	if err := CheckKey(secret); err != nil {
		return KeyPair{}, err
	}
	if !zmq.HasCurve() {
		return KeyPair{}, ErrNoCurve
	}
	pub, err := zmq.AuthCurvePublic(secret)
	if err != nil {
		return KeyPair{}, fmt.Errorf("gate: derive CURVE public key: %w", err)
	}
	return KeyPair{Public: pub, Secret: secret}, nil
}

// z85Alphabet is the Z85 character set (ZeroMQ RFC 32).
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// CheckKey reports whether key is a CURVE key in Z85 text: exactly
// 40 characters of the Z85 alphabet, each group of five encoding a
// value below 2^32. The error wraps [ErrInvalidOption] and says what is
// wrong without echoing the key (it may be a secret).
func CheckKey(key string) error {
	if len(key) != keys.Len {
		hint := ""
		if len(key) == 32 {
			hint = " (32 characters: raw binary? want Z85 text, as written by gatectl keygen)"
		} else if len(key) == 64 {
			hint = " (64 characters: hex? want Z85 text, as written by gatectl keygen)"
		}
		return fmt.Errorf("%w: CURVE key of %d characters, want %d Z85 characters%s", ErrInvalidOption, len(key), keys.Len, hint)
	}
	for g := 0; g < keys.Len; g += 5 {
		var v uint64
		for i := g; i < g+5; i++ {
			d := strings.IndexByte(z85Alphabet, key[i])
			if d < 0 {
				return fmt.Errorf("%w: CURVE key has a character outside the Z85 alphabet at offset %d", ErrInvalidOption, i)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xffffffff {
			return fmt.Errorf("%w: CURVE key is not valid Z85 (group at offset %d overflows)", ErrInvalidOption, g)
		}
	}
	return nil
}

// parseKey extracts one key from the text of a key file: blank lines and
// comments (a first word starting with '#' that is not a key) are skipped, surrounding white space is
// ignored, and exactly one key must remain. The key is checked with
// [CheckKey].
func parseKey(text []byte) (string, error) {
	var key string
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if keys.IsComment(line) {
			continue
		}
		n++
		key = line
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%w: key file: %v", ErrInvalidOption, err)
	}
	switch n {
	case 0:
		return "", fmt.Errorf("%w: no key (the file has no line other than blanks and # comments)", ErrInvalidOption)
	case 1:
	default:
		return "", fmt.Errorf("%w: %d non-comment lines, want exactly one key", ErrInvalidOption, n)
	}
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// ReadKeyFile reads one key from the file at path (blank lines and # comments skipped, exactly one key). Errors
// name the file.
func ReadKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("gate: read key: %w", err)
	}
	key, err := parseKey(b)
	if err != nil {
		return "", fmt.Errorf("gate: key file %s: %w", path, err)
	}
	return key, nil
}

// WriteKeyPair writes kp as two files: the secret key to secretPath with
// mode 0600 and the public key to publicPath with mode 0644, each one key
// line after a comment. An existing secret file is not overwritten (the
// error wraps fs.ErrExist), so a key in use is never lost by accident.
func WriteKeyPair(secretPath, publicPath string, kp KeyPair) error {
	if err := CheckKey(kp.Public); err != nil {
		return fmt.Errorf("gate: public key: %w", err)
	}
	if err := CheckKey(kp.Secret); err != nil {
		return fmt.Errorf("gate: secret key: %w", err)
	}
	write := func(path, text string, perm os.FileMode) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return fmt.Errorf("gate: write key: %w", err)
		}
		_, err = f.WriteString(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
			return fmt.Errorf("gate: write key %s: %w", path, err)
		}
		return nil
	}
	if err := write(secretPath, "# gate CURVE secret key (Z85). Keep it private.\n"+kp.Secret+"\n", 0o600); err != nil {
		return err
	}
	// The public key may be replaced: it is derived from the secret.
	_ = os.Remove(publicPath)
	if err := write(publicPath, "# gate CURVE public key (Z85) of "+filepath.Base(secretPath)+"\n"+kp.Public+"\n", 0o644); err != nil {
		return err
	}
	return nil
}

// CurveFromEnv reads a client's or worker's CURVE configuration from the
// environment through getenv (os.Getenv in binaries):
//
//	GATE_CURVE_SERVER_KEY or GATE_CURVE_SERVER_KEY_FILE  the broker's public key
//	GATE_CURVE_SECRET_KEY or GATE_CURVE_SECRET_KEY_FILE  this peer's secret key
//	GATE_CURVE_PUBLIC_KEY or GATE_CURVE_PUBLIC_KEY_FILE  optional, checked against the secret
//
// A variable set directly wins over its _FILE variant. With none of them
// set it returns the zero Curve (plain). A server key without a secret
// key, or the reverse, is an error: a half-configured peer would
// otherwise silently run plain.
func CurveFromEnv(getenv func(string) string) (Curve, error) {
	get := func(name string) (string, error) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if err := CheckKey(v); err != nil {
				return "", fmt.Errorf("gate: %s: %w", name, err)
			}
			return v, nil
		}
		if p := getenv(name + "_FILE"); p != "" {
			k, err := ReadKeyFile(p)
			if err != nil {
				return "", fmt.Errorf("%s_FILE: %w", name, err)
			}
			return k, nil
		}
		return "", nil
	}
	var c Curve
	var err error
	if c.ServerKey, err = get(keys.EnvServerKey); err != nil {
		return Curve{}, err
	}
	if c.SecretKey, err = get(keys.EnvSecretKey); err != nil {
		return Curve{}, err
	}
	if c.PublicKey, err = get(keys.EnvPublicKey); err != nil {
		return Curve{}, err
	}
	if !c.Enabled() {
		return c, nil
	}
	if c.ServerKey == "" || c.SecretKey == "" {
		return Curve{}, fmt.Errorf("%w: CURVE needs both %s[_FILE] and %s[_FILE]", ErrInvalidOption, keys.EnvServerKey, keys.EnvSecretKey)
	}
	return c.resolve()
}
