package gate

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gaterpc/gate/internal/codec"
)

// Kwargs holds keyword arguments, Python's **kwargs, on both sides of a
// call:
//
//   - passed as the last argument of [Client.Call] (or of the other
//     variadic call methods) it is sent as the request's kwargs instead
//     of as a positional argument:
//
//     c.Call(ctx, "Svc.echo", "a", 1, gate.Kwargs{"k": true}) // echo("a", 1, k=True)
//
//   - as the type of a method parameter it receives every keyword argument
//     of a call (see [Service.Register]).
type Kwargs map[string]any

var (
	ctxType          = reflect.TypeFor[context.Context]()
	errType          = reflect.TypeFor[error]()
	kwargsType       = reflect.TypeFor[Kwargs]()
	streamWriterType = reflect.TypeFor[*StreamWriter]()
	timeType         = reflect.TypeFor[time.Time]()
)

// funcAdapter maps wire arguments onto a Go function's parameters.
// Immutable after newFuncAdapter; safe for concurrent use.
type funcAdapter struct {
	name     string // method name, for messages
	fv       reflect.Value
	ft       reflect.Type
	pos      []int        // parameter indexes of required positional params
	variadic reflect.Type // element type of a variadic last param, or nil
	kwIdx    int          // parameter index of the kwargs param, or -1
	swIdx    int          // parameter index of a *StreamWriter param, or -1
	kwStruct bool         // kwargs param is a struct (else Kwargs map)
	kwFields map[string]int
	retVal   bool
	retErr   bool
	goName   string // Go function name
	file     string
	line     int
	// fast, when set, binds and calls without reflection: bind returns
	// the thunk alone in in[0] and call runs it.
	fast fastBinder
}

// setFast installs b if the function's parameters are nargs positional
// ones (no Kwargs, keyword struct or *StreamWriter), or, for a variadic
// binder, if they are ...any after an optional Kwargs.
func (a *funcAdapter) setFast(b fastBinder, nargs int, variadic bool) {
	if b == nil || a.swIdx >= 0 || a.kwStruct {
		return
	}
	switch {
	case variadic:
		if a.variadic != anyType || len(a.pos) != 0 {
			return
		}
	case a.variadic != nil || a.kwIdx >= 0 || len(a.pos) != nargs:
		return
	}
	a.fast = b
}

func newFuncAdapter(name string, fn any) (*funcAdapter, error) {
	fv := reflect.ValueOf(fn)
	if !fv.IsValid() || fv.Kind() != reflect.Func || fv.IsNil() {
		return nil, fmt.Errorf("%w: want a func(context.Context, ...), got %T", ErrInvalidOption, fn)
	}
	ft := fv.Type()
	if ft.NumIn() < 1 || ft.In(0) != ctxType {
		return nil, fmt.Errorf("%w: %v: the first parameter must be a context.Context", ErrInvalidOption, ft)
	}
	a := &funcAdapter{name: name, fv: fv, ft: ft, kwIdx: -1, swIdx: -1}
	switch ft.NumOut() {
	case 0:
	case 1:
		if ft.Out(0) == errType {
			a.retErr = true
		} else {
			a.retVal = true
		}
	case 2:
		if ft.Out(1) != errType {
			return nil, fmt.Errorf("%w: %v: the second result must be an error", ErrInvalidOption, ft)
		}
		a.retVal, a.retErr = true, true
	default:
		return nil, fmt.Errorf("%w: %v: want at most (value, error) results", ErrInvalidOption, ft)
	}
	n := ft.NumIn()
	last := n
	if ft.IsVariadic() {
		a.variadic = ft.In(n - 1).Elem()
		last = n - 1
	}
	for i := 1; i < last; i++ {
		if ft.In(i) == streamWriterType {
			if a.swIdx >= 0 {
				return nil, fmt.Errorf("%w: %v: more than one *StreamWriter parameter", ErrInvalidOption, ft)
			}
			a.swIdx = i
			continue
		}
		if ft.In(i) == kwargsType {
			if a.kwIdx >= 0 {
				return nil, fmt.Errorf("%w: %v: more than one Kwargs parameter", ErrInvalidOption, ft)
			}
			a.kwIdx = i
			continue
		}
		a.pos = append(a.pos, i)
	}
	if a.kwIdx < 0 && a.variadic == nil && len(a.pos) > 0 {
		if t := ft.In(a.pos[len(a.pos)-1]); t.Kind() == reflect.Struct && t != timeType {
			a.kwIdx = a.pos[len(a.pos)-1]
			a.pos = a.pos[:len(a.pos)-1]
			a.kwStruct = true
			a.kwFields = kwargFields(t)
		}
	}
	if a.swIdx >= 0 && a.retVal {
		return nil, fmt.Errorf("%w: %v: a method with a *StreamWriter may return only an error", ErrInvalidOption, ft)
	}
	if f := runtime.FuncForPC(fv.Pointer()); f != nil {
		a.goName = f.Name()
		a.file, a.line = f.FileLine(f.Entry())
	}
	return a, nil
}

// kwargFields maps keyword names to top-level exported field indexes: the
// msgpack tag name, else the field name and its snake_case form.
func kwargFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
		switch tag {
		case "-":
			continue
		case "":
			m[f.Name] = i
			m[snakeCase(f.Name)] = i
		default:
			m[tag] = i
		}
	}
	return m
}

// where is a Python-traceback-like line naming the Go function.
func (a *funcAdapter) where() string {
	if a.goName == "" {
		return ""
	}
	return fmt.Sprintf("  File %q, line %d, in %s\n", a.file, a.line, a.goName)
}

func typeErrorf(format string, args ...any) *Error {
	return Errorf(InvalidArgument, format, args...)
}

// bind decodes the raw arguments into the function's parameters.
//
// With a fast binder, in is one value: the thunk that calls the function.
func (a *funcAdapter) bind(ctx context.Context, cdc *codec.Codec, args codec.RawArgs, kwargs codec.RawKwargs) ([]reflect.Value, error) {
	npos := len(a.pos)
	switch {
	case len(args) < npos:
		missing := npos - len(args)
		return nil, typeErrorf("%s() missing %d required positional argument%s (got %d, want %d)", a.name, missing, plural(missing), len(args), npos)
	case len(args) > npos && a.variadic == nil:
		return nil, typeErrorf("%s() takes %d positional argument%s but %d were given", a.name, npos, plural(npos), len(args))
	}
	if a.fast != nil {
		return a.bindFast(ctx, cdc, args, kwargs)
	}
	return a.bindReflect(ctx, cdc, args, kwargs)
}

// bindReflect is bind without a fast binder (arity already checked).
func (a *funcAdapter) bindReflect(ctx context.Context, cdc *codec.Codec, args codec.RawArgs, kwargs codec.RawKwargs) ([]reflect.Value, error) {
	npos := len(a.pos)
	in := make([]reflect.Value, a.ft.NumIn())
	in[0] = reflect.ValueOf(&ctx).Elem()
	for j, i := range a.pos {
		v, err := decodeInto(cdc, args[j], a.ft.In(i))
		if err != nil {
			return nil, typeErrorf("%s() argument %d must be %s, not %s", a.name, j+1, a.ft.In(i), pyTypeName(args[j]))
		}
		in[i] = v
	}
	if a.variadic != nil {
		rest := reflect.MakeSlice(a.ft.In(a.ft.NumIn()-1), 0, len(args)-npos)
		for j := npos; j < len(args); j++ {
			v, err := decodeInto(cdc, args[j], a.variadic)
			if err != nil {
				return nil, typeErrorf("%s() argument %d must be %s, not %s", a.name, j+1, a.variadic, pyTypeName(args[j]))
			}
			rest = reflect.Append(rest, v)
		}
		in[a.ft.NumIn()-1] = rest
	}
	switch {
	case a.kwIdx < 0:
		for k := range kwargs {
			return nil, typeErrorf("%s() got an unexpected keyword argument %s", a.name, pyRepr(k))
		}
	case a.kwStruct:
		st := a.ft.In(a.kwIdx)
		sv := reflect.New(st).Elem()
		for k, raw := range kwargs {
			fi, ok := a.kwFields[k]
			if !ok {
				return nil, typeErrorf("%s() got an unexpected keyword argument %s", a.name, pyRepr(k))
			}
			f := sv.Field(fi)
			v, err := decodeInto(cdc, raw, f.Type())
			if err != nil {
				return nil, typeErrorf("%s() keyword argument %s must be %s, not %s", a.name, pyRepr(k), f.Type(), pyTypeName(raw))
			}
			f.Set(v)
		}
		in[a.kwIdx] = sv
	default:
		kw, err := a.decodeKwargs(cdc, kwargs)
		if err != nil {
			return nil, err
		}
		in[a.kwIdx] = reflect.ValueOf(kw)
	}
	return in, nil
}

// decodeKwargs decodes every keyword argument for a Kwargs parameter.
func (a *funcAdapter) decodeKwargs(cdc *codec.Codec, kwargs codec.RawKwargs) (Kwargs, error) {
	kw := make(Kwargs, len(kwargs))
	for k, raw := range kwargs {
		v, err := cdc.Decode(raw)
		if err != nil {
			return nil, typeErrorf("%s() keyword argument %s: %v", a.name, pyRepr(k), err)
		}
		kw[k] = v
	}
	return kw, nil
}

// bindFast is bind through the fast binder (arity already checked).
func (a *funcAdapter) bindFast(ctx context.Context, cdc *codec.Codec, args codec.RawArgs, kwargs codec.RawKwargs) ([]reflect.Value, error) {
	thunk, bad, err := a.fast(ctx, a, cdc, args, kwargs)
	switch {
	case err != nil && bad < 0:
		return nil, err
	case err != nil:
		t := a.variadic
		if bad < len(a.pos) {
			t = a.ft.In(a.pos[bad])
		}
		return nil, typeErrorf("%s() argument %d must be %s, not %s", a.name, bad+1, t, pyTypeName(args[bad]))
	case a.kwIdx < 0:
		for k := range kwargs {
			return nil, typeErrorf("%s() got an unexpected keyword argument %s", a.name, pyRepr(k))
		}
	}
	return []reflect.Value{reflect.ValueOf(thunk)}, nil
}

// decodeInto decodes raw into a new value of type t.
func decodeInto(cdc *codec.Codec, raw codec.RawMessage, t reflect.Type) (reflect.Value, error) {
	p := reflect.New(t)
	if t.Kind() == reflect.Interface && t.NumMethod() == 0 {
		v, err := cdc.Decode(raw)
		if err != nil {
			return reflect.Value{}, err
		}
		if v != nil {
			p.Elem().Set(reflect.ValueOf(v))
		}
		return p.Elem(), nil
	}
	if err := cdc.Unmarshal(raw, p.Interface()); err != nil {
		return reflect.Value{}, err
	}
	return p.Elem(), nil
}

// call runs the function. A panic is recovered into a RuntimeError with
// the panic's stack as traceback.
func (a *funcAdapter) call(in []reflect.Value) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(p)
		}
	}()
	if a.fast != nil {
		return in[0].Interface().(func() (any, error))()
	}
	var out []reflect.Value
	if a.variadic != nil {
		out = a.fv.CallSlice(in)
	} else {
		out = a.fv.Call(in)
	}
	switch {
	case a.retVal && a.retErr:
		res = out[0].Interface()
		if e := out[1].Interface(); e != nil {
			err = e.(error)
		}
	case a.retVal:
		res = out[0].Interface()
	case a.retErr:
		if e := out[0].Interface(); e != nil {
			err = e.(error)
		}
	}
	return res, err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// pyTypeName names the Python type of an encoded msgpack value.
func pyTypeName(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	b := raw[0]
	switch {
	case b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3):
		return "int"
	case b >= 0x80 && b <= 0x8f, b == 0xde, b == 0xdf:
		return "dict"
	case b >= 0x90 && b <= 0x9f, b == 0xdc, b == 0xdd:
		return "list"
	case b >= 0xa0 && b <= 0xbf, b >= 0xd9 && b <= 0xdb:
		return "str"
	case b == 0xc0:
		return "NoneType"
	case b == 0xc2 || b == 0xc3:
		return "bool"
	case b >= 0xc4 && b <= 0xc6:
		return "bytes"
	case b == 0xca || b == 0xcb:
		return "float"
	}
	return "ExtType"
}

// panicError turns a recovered panic into an exception with the stack.
func panicError(p any) error {
	if e, ok := p.(*Error); ok {
		if e.Traceback == "" {
			c := *e
			c.Traceback = stackTraceback(4)
			return &c
		}
		return e
	}
	msg := fmt.Sprint(p)
	if e, ok := p.(error); ok {
		msg = e.Error()
	}
	e := Errorf(Internal, "panic: %s", msg)
	e.Traceback = stackTraceback(4)
	return e
}

// stackTraceback formats the current goroutine's stack like Python's
// format_tb (outermost call first), without runtime, reflect and gate
// internal frames.
func stackTraceback(skip int) string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(skip, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var lines []string
	for {
		f, more := frames.Next()
		if !internalFrame(f.Function) {
			lines = append(lines, "  File \""+f.File+"\", line "+strconv.Itoa(f.Line)+", in "+f.Function+"\n")
		}
		if !more || strings.HasPrefix(f.Function, "github.com/gaterpc/gate/gate.(*funcAdapter).call") {
			break
		}
	}
	var b strings.Builder
	for i := len(lines) - 1; i >= 0; i-- {
		b.WriteString(lines[i])
	}
	return b.String()
}

// internalFrame reports frames a traceback leaves out.
func internalFrame(fn string) bool {
	if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "reflect.") {
		return true
	}
	rest, ok := strings.CutPrefix(fn, "github.com/gaterpc/gate/gate.")
	if !ok {
		return false
	}
	for _, p := range []string{"(*funcAdapter)", "(*Worker)", "(*replier)", "panicError", "stackTraceback", "(*method)", "(*Pool)", "inlineExec", "iterate", "bindFast"} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// fastBinder decodes a call's arguments and returns a thunk that calls the
// function with them, without reflect.Value.Call. Keyword arguments are
// decoded (through a.decodeKwargs) only by binders of functions with a
// [Kwargs] parameter, after the positional ones as bindReflect does. On a
// positional decode error, bad is the index of the failing argument; bad
// < 0 means err is the complete error.
//
// Fast binders exist for every function registered with the typed helpers
// ([Func0] .. [Func3]) whose parameters are all positional, and for common
// exact signatures passed to [Service.Register] (see fastBinderFor).
type fastBinder func(ctx context.Context, a *funcAdapter, cdc *codec.Codec, args codec.RawArgs, kwargs codec.RawKwargs) (thunk func() (any, error), bad int, err error)

// anyType is the static type any.
var anyType = reflect.TypeFor[any]()

// decodeArg decodes one argument into an A as decodeInto does: an
// interface{} parameter gets Decode's value, anything else is unmarshalled.
func decodeArg[A any](cdc *codec.Codec, raw codec.RawMessage) (A, error) {
	var a A
	if p, ok := any(&a).(*any); ok {
		v, err := cdc.Decode(raw)
		*p = v
		return a, err
	}
	return a, cdc.Unmarshal(raw, &a)
}

// fastOK reports whether decodeArg decodes into T exactly as decodeInto
// does: it does not for named empty interface types.
func fastOK(t reflect.Type) bool {
	return t.Kind() != reflect.Interface || t.NumMethod() != 0 || t == anyType
}

// decodeRest decodes variadic ...any arguments into a non-nil slice.
func decodeRest(cdc *codec.Codec, args codec.RawArgs, from int) ([]any, int, error) {
	rest := make([]any, len(args)-from)
	for j := range rest {
		v, err := cdc.Decode(args[from+j])
		if err != nil {
			return nil, from + j, err
		}
		rest[j] = v
	}
	return rest, 0, nil
}

func bindFast0[R any](fn func(context.Context) (R, error)) fastBinder {
	return func(ctx context.Context, _ *funcAdapter, _ *codec.Codec, _ codec.RawArgs, _ codec.RawKwargs) (func() (any, error), int, error) {
		return func() (any, error) { return fn(ctx) }, 0, nil
	}
}

func bindFast1[A, R any](fn func(context.Context, A) (R, error)) fastBinder {
	if !fastOK(reflect.TypeFor[A]()) {
		return nil
	}
	return func(ctx context.Context, _ *funcAdapter, cdc *codec.Codec, args codec.RawArgs, _ codec.RawKwargs) (func() (any, error), int, error) {
		a, err := decodeArg[A](cdc, args[0])
		if err != nil {
			return nil, 0, err
		}
		return func() (any, error) { return fn(ctx, a) }, 0, nil
	}
}

func bindFast2[A, B, R any](fn func(context.Context, A, B) (R, error)) fastBinder {
	if !fastOK(reflect.TypeFor[A]()) || !fastOK(reflect.TypeFor[B]()) {
		return nil
	}
	return func(ctx context.Context, _ *funcAdapter, cdc *codec.Codec, args codec.RawArgs, _ codec.RawKwargs) (func() (any, error), int, error) {
		a, err := decodeArg[A](cdc, args[0])
		if err != nil {
			return nil, 0, err
		}
		b, err := decodeArg[B](cdc, args[1])
		if err != nil {
			return nil, 1, err
		}
		return func() (any, error) { return fn(ctx, a, b) }, 0, nil
	}
}

func bindFast3[A, B, C, R any](fn func(context.Context, A, B, C) (R, error)) fastBinder {
	if !fastOK(reflect.TypeFor[A]()) || !fastOK(reflect.TypeFor[B]()) || !fastOK(reflect.TypeFor[C]()) {
		return nil
	}
	return func(ctx context.Context, _ *funcAdapter, cdc *codec.Codec, args codec.RawArgs, _ codec.RawKwargs) (func() (any, error), int, error) {
		a, err := decodeArg[A](cdc, args[0])
		if err != nil {
			return nil, 0, err
		}
		b, err := decodeArg[B](cdc, args[1])
		if err != nil {
			return nil, 1, err
		}
		c, err := decodeArg[C](cdc, args[2])
		if err != nil {
			return nil, 2, err
		}
		return func() (any, error) { return fn(ctx, a, b, c) }, 0, nil
	}
}

// bindFastErr1 is bindFast1 for a function returning only an error.
func bindFastErr1[A any](fn func(context.Context, A) error) fastBinder {
	if !fastOK(reflect.TypeFor[A]()) {
		return nil
	}
	return func(ctx context.Context, _ *funcAdapter, cdc *codec.Codec, args codec.RawArgs, _ codec.RawKwargs) (func() (any, error), int, error) {
		a, err := decodeArg[A](cdc, args[0])
		if err != nil {
			return nil, 0, err
		}
		return func() (any, error) { return nil, fn(ctx, a) }, 0, nil
	}
}

func bindFastVar[R any](fn func(context.Context, ...any) (R, error)) fastBinder {
	return func(ctx context.Context, _ *funcAdapter, cdc *codec.Codec, args codec.RawArgs, _ codec.RawKwargs) (func() (any, error), int, error) {
		rest, bad, err := decodeRest(cdc, args, 0)
		if err != nil {
			return nil, bad, err
		}
		return func() (any, error) { return fn(ctx, rest...) }, 0, nil
	}
}

func bindFastKwVar[R any](fn func(context.Context, Kwargs, ...any) (R, error)) fastBinder {
	return func(ctx context.Context, a *funcAdapter, cdc *codec.Codec, args codec.RawArgs, kwargs codec.RawKwargs) (func() (any, error), int, error) {
		rest, bad, err := decodeRest(cdc, args, 0)
		if err != nil {
			return nil, bad, err
		}
		kw, err := a.decodeKwargs(cdc, kwargs)
		if err != nil {
			return nil, -1, err
		}
		return func() (any, error) { return fn(ctx, kw, rest...) }, 0, nil
	}
}

// fastResults tries the common result types R of f for a function shape.
func fastResults[A any](fn any) fastBinder {
	switch f := fn.(type) {
	case func(context.Context, A) (any, error):
		return bindFast1(f)
	case func(context.Context, A) (string, error):
		return bindFast1(f)
	case func(context.Context, A) ([]byte, error):
		return bindFast1(f)
	case func(context.Context, A) (int, error):
		return bindFast1(f)
	case func(context.Context, A) (int64, error):
		return bindFast1(f)
	case func(context.Context, A) (float64, error):
		return bindFast1(f)
	case func(context.Context, A) (bool, error):
		return bindFast1(f)
	case func(context.Context, A) (map[string]any, error):
		return bindFast1(f)
	case func(context.Context, A) ([]any, error):
		return bindFast1(f)
	case func(context.Context, A) error:
		return bindFastErr1(f)
	}
	return nil
}

// fastVarResults tries the common result types of variadic ...any
// functions, with and without a leading Kwargs parameter.
func fastVarResults[R any](fn any) fastBinder {
	switch f := fn.(type) {
	case func(context.Context, ...any) (R, error):
		return bindFastVar(f)
	case func(context.Context, Kwargs, ...any) (R, error):
		return bindFastKwVar(f)
	}
	return nil
}

// fastBinderFor returns a fast binder for fn if its type is one of the
// common exact signatures: one positional argument of type any, string,
// []byte, int, int64, float64, bool, map[string]any or []any returning
// one of those types (or only an error), or (Kwargs,) ...any returning
// one of those types. Other functions are bound by reflection.
func fastBinderFor(fn any) fastBinder {
	for _, try := range [...]func(any) fastBinder{
		fastResults[any], fastResults[string], fastResults[[]byte],
		fastResults[int], fastResults[int64], fastResults[float64],
		fastResults[bool], fastResults[map[string]any], fastResults[[]any],
		fastVarResults[any], fastVarResults[string], fastVarResults[[]byte],
		fastVarResults[map[string]any], fastVarResults[[]any],
	} {
		if b := try(fn); b != nil {
			return b
		}
	}
	return nil
}
