package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// FromJSONSchema returns a GBNF grammar (for Parse) for the JSON values
// that a JSON Schema describes. The subset understood:
//
//   - type: "object", "array", "string", "number", "integer", "boolean",
//     "null", or a list of them (any of them);
//   - properties: the members of an object, written in the schema's order;
//     required names the ones that must be there, the others are optional;
//     no other member is written (as additionalProperties: false, which may
//     also be given; additionalProperties: true is allowed only on an object
//     without properties, which then takes any members);
//   - items: the schema of every element of an array;
//   - enum and const: the values allowed, written as compact JSON;
//   - minLength and maxLength of a string, in characters (at most 4096),
//     so that a string, and with it the whole value, ends within a length
//     (a generation cut off by its token limit cannot close the JSON);
//   - description, title, $schema, $id, $comment, examples and default are
//     annotations and are ignored.
//
// Without type, a schema with properties, required or additionalProperties
// is an object, one with items an array, and one with none of them any
// JSON value; the schema true is any value. Any other keyword (pattern,
// anyOf, $ref, ...) is refused with an error naming it and where
// it is, rather than ignored: the output would not match the schema.
//
// Whitespace, the integer part of numbers and the order of members are
// limited as in JSON (see there); every text the grammar accepts is valid
// JSON that the schema accepts.
func FromJSONSchema(schema []byte) (string, error) {
	v, err := decodeOrdered(schema)
	if err != nil {
		return "", fmt.Errorf("grammar: JSON schema: %w", err)
	}
	g := &schemaGen{names: map[string]bool{"root": true}}
	body, err := g.schema(v, "#", "root")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("root ::= " + body + "\n")
	for _, r := range g.rules {
		b.WriteString(r + "\n")
	}
	b.WriteString(jsonRules)
	return b.String(), nil
}

// jval is a JSON value that keeps the order of object members.
type jval struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	obj  []member
	arr  []jval
	str  string
	num  json.Number
	b    bool
}

type member struct {
	key string
	val jval
}

func (v *jval) get(key string) (jval, bool) {
	for _, m := range v.obj {
		if m.key == key {
			return m.val, true
		}
	}
	return jval{}, false
}

func decodeOrdered(data []byte) (jval, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := decodeValue(d, 0)
	if err != nil {
		return jval{}, err
	}
	if _, err := d.Token(); err != io.EOF {
		return jval{}, errors.New("data after the schema's value")
	}
	return v, nil
}

const maxSchemaDepth = 200

func decodeValue(d *json.Decoder, depth int) (jval, error) {
	if depth > maxSchemaDepth {
		return jval{}, fmt.Errorf("nested more than %d deep", maxSchemaDepth)
	}
	t, err := d.Token()
	if err != nil {
		if err == io.EOF {
			return jval{}, errors.New("empty")
		}
		return jval{}, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := jval{kind: 'o'}
			seen := map[string]bool{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return jval{}, err
				}
				k := kt.(string)
				if seen[k] {
					return jval{}, fmt.Errorf("member %q given twice", k)
				}
				seen[k] = true
				val, err := decodeValue(d, depth+1)
				if err != nil {
					return jval{}, err
				}
				v.obj = append(v.obj, member{k, val})
			}
			_, err := d.Token() // }
			return v, err
		case '[':
			v := jval{kind: 'a'}
			for d.More() {
				val, err := decodeValue(d, depth+1)
				if err != nil {
					return jval{}, err
				}
				v.arr = append(v.arr, val)
			}
			_, err := d.Token() // ]
			return v, err
		}
	case string:
		return jval{kind: 's', str: t}, nil
	case json.Number:
		return jval{kind: 'n', num: t}, nil
	case bool:
		return jval{kind: 'b', b: t}, nil
	case nil:
		return jval{kind: 'z'}, nil
	}
	return jval{}, fmt.Errorf("unexpected %v", t)
}

// appendJSON writes v as compact JSON.
func (v jval) appendJSON(buf []byte) []byte {
	switch v.kind {
	case 'o':
		buf = append(buf, '{')
		for i, m := range v.obj {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, m.key)
			buf = append(buf, ':')
			buf = m.val.appendJSON(buf)
		}
		return append(buf, '}')
	case 'a':
		buf = append(buf, '[')
		for i, x := range v.arr {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = x.appendJSON(buf)
		}
		return append(buf, ']')
	case 's':
		return appendJSONString(buf, v.str)
	case 'n':
		return append(buf, v.num...)
	case 'b':
		return strconv.AppendBool(buf, v.b)
	}
	return append(buf, "null"...)
}

func appendJSONString(buf []byte, s string) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s) // a string always encodes
	return append(buf, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
}

// gbnfLiteral quotes s as a GBNF string literal.
func gbnfLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7F:
			fmt.Fprintf(&b, `\x%02X`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

type schemaGen struct {
	rules []string
	names map[string]bool
}

// name returns a new rule name made from base.
func (g *schemaGen) name(base string) string {
	var b strings.Builder
	dash := false
	for _, c := range []byte(base) {
		if isNameByte(c) {
			b.WriteByte(c)
			dash = c == '-'
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	n := strings.TrimRight(b.String(), "-")
	if len(n) > 60 {
		n = strings.TrimRight(n[:60], "-")
	}
	out := n
	for i := 2; g.names[out] || isJSONRule(out); i++ {
		out = fmt.Sprintf("%s-%d", n, i)
	}
	g.names[out] = true
	return out
}

func isJSONRule(n string) bool {
	switch n {
	case "value", "object", "array", "string", "char", "number", "integer", "boolean", "null", "ws":
		return true
	}
	return false
}

func (g *schemaGen) define(name, body string) string {
	g.rules = append(g.rules, name+" ::= "+body)
	return name
}

// named returns expr when it is a rule name, else a new rule for it.
func (g *schemaGen) named(base, expr string) string {
	if !strings.ContainsAny(expr, " \"()|") {
		return expr
	}
	return g.define(g.name(base), expr)
}

// schemaError is the error for the schema at JSON pointer path.
func schemaError(path, format string, args ...any) error {
	return fmt.Errorf("grammar: JSON schema at %s: %s", path, fmt.Sprintf(format, args...))
}

var annotations = []string{"description", "title", "$schema", "$id", "$comment", "examples", "default"}

var typeNames = []string{"object", "array", "string", "number", "integer", "boolean", "null"}

// schema returns the GBNF body for the values of schema v at path (a JSON
// pointer), defining the rules it needs; base names them.
func (g *schemaGen) schema(v jval, path, base string) (string, error) {
	switch v.kind {
	case 'b':
		if !v.b {
			return "", schemaError(path, "the schema false accepts no value")
		}
		return "value", nil
	case 'o':
	default:
		return "", schemaError(path, "a schema must be an object or a boolean, not %s", v.appendJSON(nil))
	}
	for _, m := range v.obj {
		switch m.key {
		case "type", "properties", "required", "items", "enum", "const", "additionalProperties", "minLength", "maxLength":
		default:
			if !slices.Contains(annotations, m.key) {
				return "", schemaError(path, "keyword %q is not supported (supported: type, properties, required, items, enum, const, additionalProperties, minLength, maxLength; ignored: %s)",
					m.key, strings.Join(annotations, ", "))
			}
		}
	}
	var types []string
	if t, ok := v.get("type"); ok {
		var list []jval
		switch t.kind {
		case 's':
			list = []jval{t}
		case 'a':
			if len(t.arr) == 0 {
				return "", schemaError(path+"/type", "an empty list of types accepts no value")
			}
			list = t.arr
		default:
			return "", schemaError(path+"/type", "type must be a string or a list of strings, not %s", t.appendJSON(nil))
		}
		for _, x := range list {
			if x.kind != 's' || !slices.Contains(typeNames, x.str) {
				return "", schemaError(path+"/type", "type %s is not one of %s", x.appendJSON(nil), strings.Join(typeNames, ", "))
			}
			if !slices.Contains(types, x.str) {
				types = append(types, x.str)
			}
		}
	}
	lengths, err := stringLengths(v, path)
	if err != nil {
		return "", err
	}
	_, hasMin := v.get("minLength")
	_, hasMax := v.get("maxLength")
	if (hasMin || hasMax) && !slices.Contains(types, "string") {
		return "", schemaError(path, "minLength and maxLength apply to strings: give type string")
	}
	_, hasProps := v.get("properties")
	_, hasReq := v.get("required")
	_, hasAdd := v.get("additionalProperties")
	_, hasItems := v.get("items")
	objKw, arrKw := hasProps || hasReq || hasAdd, hasItems

	enum, hasEnum := v.get("enum")
	if c, ok := v.get("const"); ok {
		if hasEnum {
			return "", schemaError(path, "both enum and const given")
		}
		enum, hasEnum = jval{kind: 'a', arr: []jval{c}}, true
	}
	if hasEnum {
		if objKw || arrKw {
			return "", schemaError(path, "enum or const together with properties, required, additionalProperties or items is not supported")
		}
		return g.enum(enum, types, path, base)
	}

	if types == nil {
		switch {
		case objKw && arrKw:
			return "", schemaError(path, "properties and items without a type: give type")
		case objKw:
			types = []string{"object"}
		case arrKw:
			types = []string{"array"}
		default:
			return "value", nil
		}
	}
	if objKw && !slices.Contains(types, "object") {
		return "", schemaError(path, "properties, required and additionalProperties apply to objects, and type %s has none", strings.Join(types, ", "))
	}
	if arrKw && !slices.Contains(types, "array") {
		return "", schemaError(path, "items applies to arrays, and type %s has none", strings.Join(types, ", "))
	}
	var alts []string
	for _, t := range types {
		switch t {
		case "string":
			if lengths != "" {
				alts = append(alts, g.named(base+"-string", `"\"" char`+lengths+` "\"" ws`))
				continue
			}
			alts = append(alts, t)
		case "object":
			body, err := g.object(v, path, base)
			if err != nil {
				return "", err
			}
			alts = append(alts, body)
		case "array":
			body, err := g.array(v, path, base)
			if err != nil {
				return "", err
			}
			alts = append(alts, body)
		default:
			alts = append(alts, t)
		}
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return "( " + strings.Join(alts, " | ") + " )", nil
}

// maxStringLength bounds minLength and maxLength (the grammar repeats a
// character rule that many times).
const maxStringLength = 4096

// stringLengths reads minLength and maxLength as a GBNF repetition
// ("{2,10}"), or "" when neither is given.
func stringLengths(v jval, path string) (string, error) {
	lo, hi := 0, -1
	for _, k := range []string{"minLength", "maxLength"} {
		x, ok := v.get(k)
		if !ok {
			continue
		}
		n, err := x.num.Int64()
		if x.kind != 'n' || err != nil || n < 0 || n > maxStringLength {
			return "", schemaError(path+"/"+k, "%s must be an integer in 0..%d, not %s", k, maxStringLength, x.appendJSON(nil))
		}
		if k == "minLength" {
			lo = int(n)
		} else {
			hi = int(n)
		}
	}
	switch {
	case hi < 0 && lo == 0:
		return "", nil // no bound
	case hi < 0:
		return fmt.Sprintf("{%d,}", lo), nil
	case hi < lo:
		return "", schemaError(path, "maxLength %d is less than minLength %d", hi, lo)
	}
	return fmt.Sprintf("{%d,%d}", lo, hi), nil
}

// enum returns alternatives of the values' compact JSON.
func (g *schemaGen) enum(e jval, types []string, path, base string) (string, error) {
	if e.kind != 'a' {
		return "", schemaError(path+"/enum", "enum must be a list of values, not %s", e.appendJSON(nil))
	}
	if len(e.arr) == 0 {
		return "", schemaError(path+"/enum", "an empty enum accepts no value")
	}
	var alts []string
	for i, x := range e.arr {
		if types != nil && !hasType(x, types) {
			return "", schemaError(fmt.Sprintf("%s/enum/%d", path, i), "value %s is not of type %s", x.appendJSON(nil), strings.Join(types, ", "))
		}
		lit := gbnfLiteral(string(x.appendJSON(nil)))
		if !slices.Contains(alts, lit) {
			alts = append(alts, lit)
		}
	}
	return "( " + strings.Join(alts, " | ") + " ) ws", nil
}

func hasType(x jval, types []string) bool {
	for _, t := range types {
		switch {
		case t == "object" && x.kind == 'o', t == "array" && x.kind == 'a', t == "string" && x.kind == 's',
			t == "number" && x.kind == 'n', t == "boolean" && x.kind == 'b', t == "null" && x.kind == 'z':
			return true
		case t == "integer" && x.kind == 'n':
			f, err := strconv.ParseFloat(string(x.num), 64)
			if err == nil && f == math.Trunc(f) {
				return true
			}
		}
	}
	return false
}

func (g *schemaGen) object(v jval, path, base string) (string, error) {
	props, hasProps := v.get("properties")
	req, hasReq := v.get("required")
	add, hasAdd := v.get("additionalProperties")
	if hasProps && props.kind != 'o' {
		return "", schemaError(path+"/properties", "properties must be an object, not %s", props.appendJSON(nil))
	}
	required := map[string]bool{}
	if hasReq {
		if req.kind != 'a' {
			return "", schemaError(path+"/required", "required must be a list of names, not %s", req.appendJSON(nil))
		}
		for i, r := range req.arr {
			if r.kind != 's' {
				return "", schemaError(fmt.Sprintf("%s/required/%d", path, i), "required must be a list of names, not %s", r.appendJSON(nil))
			}
			if _, ok := props.get(r.str); !ok {
				return "", schemaError(fmt.Sprintf("%s/required/%d", path, i), "required names %q, which properties does not define", r.str)
			}
			required[r.str] = true
		}
	}
	if hasAdd {
		switch {
		case add.kind != 'b':
			return "", schemaError(path+"/additionalProperties", "only additionalProperties false (or true without properties) is supported, not a schema")
		case add.b && hasProps:
			return "", schemaError(path+"/additionalProperties", "additionalProperties true together with properties is not supported")
		}
	}
	if !hasProps || len(props.obj) == 0 {
		if hasAdd && !add.b || hasProps {
			return `"{" ws "}" ws`, nil // no member allowed
		}
		return "object", nil
	}
	name := base
	// kv(i): one member; after(i): the members from i on, each after a
	// comma (some member came before); the first member written is one
	// of the optional ones before the first required one, or that one.
	n := len(props.obj)
	kv := make([]string, n)
	for i, m := range props.obj {
		val, err := g.schema(m.val, path+"/properties/"+pointerEscape(m.key), base+"-"+m.key)
		if err != nil {
			return "", err
		}
		key := gbnfLiteral(string(appendJSONString(nil, m.key)))
		kv[i] = g.define(g.name(name+"-kv-"+m.key), key+" ws \":\" ws "+g.named(base+"-"+m.key, val))
	}
	after := make([]string, n+1)
	for i := n - 1; i >= 1; i-- { // after(0) is never needed
		item := `"," ws ` + kv[i]
		if !required[props.obj[i].key] {
			item = "( " + item + " )?"
		}
		if after[i+1] != "" {
			item += " " + after[i+1]
		}
		after[i] = g.define(g.name(fmt.Sprintf("%s-after-%d", name, i)), item)
	}
	var first []string
	allOptional := true
	for i, m := range props.obj {
		alt := kv[i]
		if after[i+1] != "" {
			alt += " " + after[i+1]
		}
		first = append(first, alt)
		if required[m.key] {
			allOptional = false
			break
		}
	}
	members := strings.Join(first, " | ")
	if allOptional {
		members = "( " + members + " )?"
	} else if len(first) > 1 {
		members = "( " + members + " )"
	}
	return `"{" ws ` + members + ` "}" ws`, nil
}

func (g *schemaGen) array(v jval, path, base string) (string, error) {
	items, ok := v.get("items")
	if !ok {
		return "array", nil
	}
	switch {
	case items.kind == 'a':
		return "", schemaError(path+"/items", "items as a list (tuples) is not supported: give one schema for every element")
	case items.kind == 'b' && !items.b:
		return `"[" ws "]" ws`, nil
	}
	item, err := g.schema(items, path+"/items", base+"-item")
	if err != nil {
		return "", err
	}
	item = g.named(base+"-item", item)
	return `"[" ws ( ` + item + ` ( "," ws ` + item + ` )* )? "]" ws`, nil
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
