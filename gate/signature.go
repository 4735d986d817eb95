package gate

import (
	"fmt"
	"reflect"
	"strings"
)

// WithParams names the method's parameters for get_interfaces: the
// positional ones in order, then optionally the variadic one (Python's
// *args). Go keeps no parameter names at run time, so without it they are
// reported as arg1, arg2, ... and the variadic one as *args.
//
//	gate.Func2(svc, "add", add, gate.WithParams("a", "b")) // add(a: int, b: int) -> int
//
// Register fails (wrapping [ErrInvalidOption]) if the count does not
// match. [WithSignature] overrides the whole text.
func WithParams(names ...string) MethodOption {
	return methodOption(func(m *method) { m.params = names })
}

// pySignature renders the method's signature as Python's
// str(inspect.signature(fn)) does, the form 0.2.12 workers report:
// "(a: int, b: int) -> int", "(value)", "(*args, **kwargs)". Parameters
// and results of type any have no annotation; a trailing keyword struct
// becomes keyword-only parameters with their zero values as defaults;
// *StreamWriter parameters are left out.
func (a *funcAdapter) pySignature(names []string) (string, error) {
	want := len(a.pos)
	if len(names) != 0 && len(names) != want && !(a.variadic != nil && len(names) == want+1) {
		extra := ""
		if a.variadic != nil {
			extra = fmt.Sprintf(" (or %d with the variadic one)", want+1)
		}
		return "", fmt.Errorf("%w: WithParams: %d names for %d positional parameters%s", ErrInvalidOption, len(names), want, extra)
	}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " ,():*=") {
			return "", fmt.Errorf("%w: WithParams: %q is not a parameter name", ErrInvalidOption, n)
		}
	}
	var params []string
	for j, i := range a.pos {
		name := fmt.Sprintf("arg%d", j+1)
		if j < len(names) {
			name = names[j]
		}
		params = append(params, annotate(name, a.ft.In(i)))
	}
	if a.variadic != nil {
		name := "args"
		if len(names) == want+1 {
			name = names[want]
		}
		params = append(params, annotate("*"+name, a.variadic))
	}
	if a.kwIdx >= 0 && a.kwStruct {
		if a.variadic == nil {
			params = append(params, "*")
		}
		st := a.ft.In(a.kwIdx)
		for i := range st.NumField() {
			f := st.Field(i)
			name := kwargName(f)
			if name == "" {
				continue
			}
			params = append(params, annotate(name, f.Type)+" = "+pyZero(f.Type))
		}
	} else if a.kwIdx >= 0 {
		params = append(params, "**kwargs")
	}
	sig := "(" + strings.Join(params, ", ") + ")"
	switch {
	case a.swIdx >= 0:
		sig += " -> Iterator"
	case a.retVal:
		if t := a.ft.Out(0); !isAny(t) {
			sig += " -> " + pyType(t)
		}
	default:
		sig += " -> None"
	}
	return sig, nil
}

// kwargName is the keyword that fills field f (see kwargFields), or ""
// if none does.
func kwargName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
	switch tag {
	case "-":
		return ""
	case "":
		return snakeCase(f.Name)
	}
	return tag
}

func annotate(name string, t reflect.Type) string {
	if isAny(t) {
		return name
	}
	return name + ": " + pyType(t)
}

func isAny(t reflect.Type) bool { return t.Kind() == reflect.Interface && t.NumMethod() == 0 }

var hugeType = reflect.TypeFor[HugeValue]()

// pyType names the Python type a value of Go type t travels as.
func pyType(t reflect.Type) string {
	switch t {
	case timeType:
		return "datetime"
	case hugeType:
		return "HugeData"
	case kwargsType:
		return "dict[str, Any]"
	}
	if elem, ok := seqItem(t); ok {
		return "Iterator[" + pyType(elem) + "]"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.String:
		return "str"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		if isAny(t.Elem()) {
			return "list"
		}
		return "list[" + pyType(t.Elem()) + "]"
	case reflect.Map:
		return "dict[" + pyTypeAny(t.Key()) + ", " + pyTypeAny(t.Elem()) + "]"
	case reflect.Pointer:
		return pyType(t.Elem()) + " | None"
	case reflect.Interface:
		return "Any"
	case reflect.Struct:
		if t.Name() != "" {
			return t.Name()
		}
		return "dict"
	}
	return t.String()
}

func pyTypeAny(t reflect.Type) string {
	if isAny(t) {
		return "Any"
	}
	return pyType(t)
}

// seqItem reports whether t is an iterator a method may return
// (iter.Seq[T] or iter.Seq2[T, error], see iterate) and its item type.
func seqItem(t reflect.Type) (reflect.Type, bool) {
	if t.Kind() != reflect.Func || t.NumIn() != 1 || t.NumOut() != 0 {
		return nil, false
	}
	y := t.In(0)
	if y.Kind() != reflect.Func || y.NumOut() != 1 || y.Out(0).Kind() != reflect.Bool {
		return nil, false
	}
	if y.NumIn() == 1 || (y.NumIn() == 2 && y.In(1) == errType) {
		return y.In(0), true
	}
	return nil, false
}

// pyZero is Python's repr of the value a keyword argument has when the
// caller leaves it out: the Go zero value.
func pyZero(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "False"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "0"
	case reflect.Float32, reflect.Float64:
		return "0.0"
	case reflect.String:
		return "''"
	}
	return "None"
}
