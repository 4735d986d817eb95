package gate

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"

	"github.com/gaterpc/gate/internal/codec"
)

// defaultDescription is the description a [Service] announces when none
// is given (0.2.12's default).
const defaultDescription = "gate-rpc service"

// getInterfacesName is the name of the built-in method every Service exposes,
// as 0.2.12 workers do: it returns {name: {"doc": str|nil, "signature":
// str}} for every method, itself included.
const getInterfacesName = "get_interfaces"

// Service is a named set of methods, the Go form of a gaterpc Service
// class and its @interface methods. Workers created for it announce
// "name:description:capacity" to the broker and serve its methods.
//
// Register methods before starting workers; registration is safe for
// concurrent use, and methods registered later are served by running
// workers too. A Service may back any number of workers.
type Service struct {
	name, description string

	mu      sync.RWMutex
	methods map[string]*method
	order   []string
}

// NewService returns a service with the built-in get_interfaces method.
// name must be non-empty, must not contain ':' (the READY separator) and
// must not be the broker's internal service "Gate"; the same holds for
// description, which defaults to "gate-rpc service" (0.2.12's default).
// Errors wrap [ErrInvalidOption].
func NewService(name, description string) (*Service, error) {
	if description == "" {
		description = defaultDescription
	}
	if msg := checkServiceName("service name", name); msg != "" {
		return nil, fmt.Errorf("gate: NewService: %w: %s", ErrInvalidOption, msg)
	}
	if strings.Contains(description, ":") {
		return nil, fmt.Errorf("gate: NewService: %w: description %q must not contain ':' (the READY separator)", ErrInvalidOption, description)
	}
	if name == defaultInternalService {
		return nil, fmt.Errorf("gate: NewService: %w: %q is reserved for the broker's internal service", ErrInvalidOption, name)
	}
	s := &Service{name: name, description: description, methods: map[string]*method{}}
	gi, err := newFuncAdapter(getInterfacesName, s.getInterfaces)
	if err != nil {
		panic(err) // a bug in this package
	}
	s.methods[getInterfacesName] = &method{name: getInterfacesName, fn: gi, exec: Inline,
		doc: "List the service's methods: {name: {doc, signature}}.", signature: "()"}
	s.order = append(s.order, getInterfacesName)
	return s, nil
}

// Name returns the service name.
func (s *Service) Name() string { return s.name }

// Description returns the service description.
func (s *Service) Description() string { return s.description }

// Methods returns the registered method names in registration order,
// get_interfaces first.
func (s *Service) Methods() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.order...)
}

// method is one registered method: a function adapter and its options.
type method struct {
	name      string
	doc       string
	signature string
	params    []string // WithParams
	exec      Executor // nil: the worker's default pool
	fn        *funcAdapter
	procName  string // set when fn is a ProcessFunc
}

// MethodOption configures one method at registration: [WithDoc],
// [WithParams], [WithSignature], [WithExecutor]. Register applies them in
// order (later wins) and reports an invalid one, such as WithParams names
// that do not fit the function, wrapping [ErrInvalidOption].
type MethodOption interface{ applyMethod(*method) }

type methodOption func(*method)

func (f methodOption) applyMethod(m *method) { f(m) }

// WithExecutor selects where the method runs: [Inline], a [*Pool] or a
// [*ProcessPool]. The default (nil) is the worker's goroutine pool (see
// [WithPoolSize]). A ProcessPool only runs functions registered with
// [ProcessFunc].
func WithExecutor(e Executor) MethodOption { return methodOption(func(m *method) { m.exec = e }) }

// WithDoc sets the method's doc string, reported by get_interfaces.
func WithDoc(doc string) MethodOption { return methodOption(func(m *method) { m.doc = doc }) }

// WithSignature overrides the signature text get_interfaces reports (by
// default Python's form derived from the Go function type, see
// [WithParams]).
func WithSignature(sig string) MethodOption {
	return methodOption(func(m *method) { m.signature = sig })
}

// Register registers fn, a Go function, as the method name. fn's first
// parameter must be a context.Context; it may return nothing, an error, a
// value, or a value and an error. The other parameters map the call's
// arguments:
//
//   - positional arguments fill the parameters in order, each decoded from
//     msgpack straight into the parameter's type; a variadic last
//     parameter takes the remaining ones;
//   - a parameter of type [Kwargs] receives every keyword argument;
//   - otherwise, if the last parameter is a struct (not a pointer to
//     one, and not time.Time), keyword arguments fill its fields by
//     msgpack tag, field name, or the field name in snake_case;
//   - wrong arity, unknown keywords or undecodable values are answered
//     with a TypeError exception that says which argument was wrong.
//
// A *[StreamWriter] parameter makes the method a writer-style stream (it
// may then return only an error).
//
// fn may return an iter.Seq[T] or iter.Seq2[T, error] (sent as a stream),
// a [Huge] value (compressed and chunked), or any msgpack-encodable
// value. An error is sent as an exception triple ([Error] for a chosen
// class); a panic is recovered and sent as a RuntimeError with its stack.
// fn may also be a [*ProcessFunc], which can run on a [ProcessPool].
//
// Register fails (wrapping [ErrInvalidOption]) if fn has another shape or
// name is taken.
func (s *Service) Register(name string, fn any, opts ...MethodOption) error {
	return s.register(name, fn, nil, 0, false, opts)
}

// register is Register with an optional fast binder for fn, which takes
// nargs positional arguments (or ...any if variadic); without one, a
// binder for fn's exact type is looked up (fastBinderFor).
func (s *Service) register(name string, fn any, fast fastBinder, nargs int, variadic bool, opts []MethodOption) error {
	m := &method{name: name}
	if pf, ok := fn.(*ProcessFunc); ok {
		m.procName = pf.name
		fn = pf.fn
	}
	a, err := newFuncAdapter(name, fn)
	if err != nil {
		return fmt.Errorf("gate: Register %q: %w", name, err)
	}
	if fast != nil {
		a.setFast(fast, nargs, variadic)
	} else if m.procName == "" {
		a.fast = fastBinderFor(fn)
	}
	m.fn = a
	for _, o := range opts {
		if o != nil {
			o.applyMethod(m)
		}
	}
	if m.signature == "" {
		if m.signature, err = a.pySignature(m.params); err != nil {
			return fmt.Errorf("gate: Register %q: %w", name, err)
		}
	}
	if _, ok := m.exec.(*ProcessPool); ok && m.procName == "" {
		return fmt.Errorf("gate: Register %q: %w: only a *ProcessFunc can run on a ProcessPool", name, ErrInvalidOption)
	}
	return s.add(m)
}

// RegisterStruct registers every exported method of v whose first
// parameter is a context.Context (the @interface idea), under the method
// name converted to snake_case: Echo → echo, GetUser → get_user,
// HTTPStatus → http_status. Other methods are skipped. If v has a method
// MethodDocs() map[string]string, its entries (keyed by Go method name)
// become doc strings. opts apply to every method. It returns the first
// registration error.
func (s *Service) RegisterStruct(v any, opts ...MethodOption) error {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return fmt.Errorf("gate: RegisterStruct: %w: nil value", ErrInvalidOption)
	}
	var docs map[string]string
	if d, ok := v.(interface{ MethodDocs() map[string]string }); ok {
		docs = d.MethodDocs()
	}
	n := 0
	rt := rv.Type()
	for i := range rt.NumMethod() {
		mt := rt.Method(i)
		ft := mt.Type // includes the receiver
		if ft.NumIn() < 2 || ft.In(1) != ctxType {
			continue
		}
		mo := append([]MethodOption{WithDoc(docs[mt.Name])}, opts...)
		if err := s.Register(snakeCase(mt.Name), rv.Method(i).Interface(), mo...); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("gate: RegisterStruct %T: %w: no exported method takes a context.Context first", v, ErrInvalidOption)
	}
	return nil
}

func (s *Service) add(m *method) error {
	if m.name == "" || strings.HasPrefix(m.name, "_") {
		return fmt.Errorf("gate: register %q: %w: method names must be non-empty and not start with '_'", m.name, ErrInvalidOption)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[m.name]; dup {
		return fmt.Errorf("gate: register %q: %w: already registered", m.name, ErrInvalidOption)
	}
	s.methods[m.name] = m
	s.order = append(s.order, m.name)
	return nil
}

func (s *Service) lookup(name string) *method {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.methods[name]
}

// getInterfaces is the built-in get_interfaces method.
func (s *Service) getInterfaces(context.Context) (codec.Map, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(codec.Map, 0, len(s.order))
	for _, name := range s.order {
		m := s.methods[name]
		var doc any
		if m.doc != "" {
			doc = m.doc
		}
		out = append(out, codec.MapItem{Key: name, Value: codec.Map{{Key: "doc", Value: doc}, {Key: "signature", Value: m.signature}}})
	}
	return out, nil
}

// snakeCase converts a Go identifier to the snake_case method name
// RegisterStruct uses: "GetUser" → "get_user", "HTTPStatus" →
// "http_status", "Echo" → "echo".
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				(i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Typed registration helpers. They check fn's types at compile time and
// register it like Service.Register; R may be a value, an iter.Seq or
// iter.Seq2 (streams) or a Huge value.

// Func0 registers fn, which takes no call arguments, as name.
func Func0[R any](s *Service, name string, fn func(context.Context) (R, error), opts ...MethodOption) error {
	return s.register(name, fn, bindFast0(fn), 0, false, opts)
}

// Func1 registers fn, which takes one positional argument, as name.
func Func1[A, R any](s *Service, name string, fn func(context.Context, A) (R, error), opts ...MethodOption) error {
	return s.register(name, fn, bindFast1(fn), 1, false, opts)
}

// Func2 registers fn, which takes two positional arguments, as name.
func Func2[A, B, R any](s *Service, name string, fn func(context.Context, A, B) (R, error), opts ...MethodOption) error {
	return s.register(name, fn, bindFast2(fn), 2, false, opts)
}

// Func3 registers fn, which takes three positional arguments, as name.
func Func3[A, B, C, R any](s *Service, name string, fn func(context.Context, A, B, C) (R, error), opts ...MethodOption) error {
	return s.register(name, fn, bindFast3(fn), 3, false, opts)
}
