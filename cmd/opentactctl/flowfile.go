package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

// maxFlowFileBytes bounds a flow file: far beyond a call flow, which
// Opentact takes up to 16 KiB of XML.
const maxFlowFileBytes = 1 << 20

// maxFlowJSON bounds the JSON a YAML flow turns into, aliases expanded.
const maxFlowJSON = 4 << 20

// maxYAMLDepth bounds the nesting of a YAML flow: a call flow's XML
// nests 16 deep at most, each level a few YAML levels.
const maxYAMLDepth = 256

// flowFormat is how a flow file is read.
type flowFormat int

const (
	formatGuess flowFormat = iota // JSON, else YAML
	formatJSON
	formatYAML
	formatXML
)

// formatOf is the format a file's extension names; formatGuess for
// standard input and other extensions.
func formatOf(name string) flowFormat {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return formatJSON
	case ".yaml", ".yml":
		return formatYAML
	case ".xml":
		return formatXML
	}
	return formatGuess
}

// readFlowFile reads the file name, or standard input for "-", at most
// maxFlowFileBytes, and gives the name to show in errors. Its error is a
// usage error that names the file.
func (c *command) readFlowFile(name string) ([]byte, string, error) {
	var r io.Reader = c.stdin
	shown := "standard input"
	if name != "-" {
		shown = name
		f, err := os.Open(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, shown, fmt.Errorf("%s: no such file", name)
		case err != nil:
			return nil, shown, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFlowFileBytes+1))
	switch {
	case err != nil:
		return nil, shown, fmt.Errorf("reading %s: %w", shown, err)
	case len(data) > maxFlowFileBytes:
		return nil, shown, fmt.Errorf("%s is over %d bytes (1 MiB): a call flow is far smaller", shown, maxFlowFileBytes)
	}
	return data, shown, nil
}

// errEmptyFlow is a flow file with nothing in it.
var errEmptyFlow = errors.New(`empty: want a call flow, such as {"verbs": [{"hangup": {}}]}`)

// parseFlow reads data, a typed call flow as JSON (protojson, with the
// proto's field names or their JSON names) or YAML of the same
// structure, in format, or by trying JSON then YAML. Unknown fields are
// an error; every error names the line.
func parseFlow(data []byte, format flowFormat) (*callv1.CallFlow, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errEmptyFlow
	}
	switch format {
	case formatJSON:
		return flowFromJSON(data)
	case formatYAML:
		return flowFromYAML(data)
	}
	if json.Valid(data) {
		return flowFromJSON(data)
	}
	flow, err := flowFromYAML(data)
	if err != nil && bytes.TrimSpace(data)[0] == '{' {
		// Meant as JSON, most likely: its error says more.
		_, jerr := flowFromJSON(data)
		return nil, jerr
	}
	return flow, err
}

// flowFromJSON reads a flow as protojson.
func flowFromJSON(data []byte) (*callv1.CallFlow, error) {
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("not JSON: line %d, column %d: %v", line, col, se)
		}
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, errors.New(`want a JSON object, the fields of a call flow: {"verbs": [...]}`)
	}
	flow := &callv1.CallFlow{}
	if err := protojson.Unmarshal(data, flow); err != nil {
		return nil, protoError(err, func(line, col int) string { return fmt.Sprintf("line %d, column %d", line, col) })
	}
	return flow, nil
}

// protoPosition is where protojson's errors say they are.
var protoPosition = regexp.MustCompile(`\s*\(line (\d+):(\d+)\)`)

// protoError rewords an error of protojson: its position, as where puts
// it, first, and no "proto:" prefix.
func protoError(err error, where func(line, col int) string) error {
	msg := err.Error()
	for _, p := range []string{"proto: ", "proto:\u00a0"} {
		msg = strings.TrimPrefix(msg, p)
	}
	m := protoPosition.FindStringSubmatchIndex(msg)
	if m == nil {
		return errors.New(msg)
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	col, _ := strconv.Atoi(msg[m[4]:m[5]])
	rest := strings.TrimPrefix(msg[:m[0]]+msg[m[1]:], ":")
	return fmt.Errorf("%s: %s", where(line, col), strings.TrimSpace(rest))
}

// flowFromYAML reads a flow as YAML: converted to JSON, each member and
// element on a line of its own so that protojson's errors can be traced
// back to the YAML's lines, then read as protojson.
func flowFromYAML(data []byte) (*callv1.CallFlow, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmptyFlow
		}
		return nil, yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(err)
	default:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, fmt.Errorf("line %d: a second YAML document: the file holds one call flow", line)
	}
	// Decoded once as plain values for yaml's own checks: a key given
	// twice, an anchor that holds itself, aliases that expand too far.
	var plain any
	if err := doc.Decode(&plain); err != nil {
		return nil, yamlError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, errEmptyFlow
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, errEmptyFlow
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping, the fields of a call flow (verbs: [...])", root.Line)
	}
	w := &yamlJSON{lines: []int{root.Line}}
	fd := (&callv1.RenderCallFlowRequest{}).ProtoReflect().Descriptor().Fields().ByName("flow")
	if err := w.value(root, fd, true, 0); err != nil {
		return nil, err
	}
	flow := &callv1.CallFlow{}
	if err := protojson.Unmarshal(w.buf.Bytes(), flow); err != nil {
		return nil, protoError(err, func(line, _ int) string {
			if line >= 1 && line <= len(w.lines) {
				line = w.lines[line-1]
			}
			return fmt.Sprintf("line %d", line)
		})
	}
	return flow, nil
}

// yamlError is an error of the yaml package, without its "yaml: "
// prefix, on one line.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// yamlJSON writes a YAML document as JSON for protojson, with the line of
// the YAML each line of the JSON comes from.
type yamlJSON struct {
	buf   bytes.Buffer
	lines []int // the YAML line of each line of buf, from its first
}

// newline starts a line of the JSON that comes from the YAML's line.
func (w *yamlJSON) newline(line int) error {
	if w.buf.Len() > maxFlowJSON {
		return fmt.Errorf("line %d: the flow is over %d bytes as JSON, its aliases expanded", line, maxFlowJSON)
	}
	w.buf.WriteByte('\n')
	w.lines = append(w.lines, line)
	return nil
}

func (w *yamlJSON) quote(s string) {
	b, _ := json.Marshal(s) // a string always marshals
	w.buf.Write(b)
}

// value writes n as the value of the field fd: its whole value when
// whole, else one element of its list. With fd nil (a field the flow does
// not have, which protojson then refuses) n is written as its YAML types
// say. A scalar for a string field is written as a string whatever it
// looks like (value: 1 is "1"), as a YAML user means it.
func (w *yamlJSON) value(n *yaml.Node, fd protoreflect.FieldDescriptor, whole bool, depth int) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if depth > maxYAMLDepth {
		return fmt.Errorf("line %d: nested over %d deep", n.Line, maxYAMLDepth)
	}
	collection := fd != nil && whole && (fd.IsList() || fd.IsMap())
	if tag := n.ShortTag(); n.Kind != yaml.ScalarNode && tag != "!!map" && tag != "!!seq" {
		return fmt.Errorf("line %d: the YAML tag %s is not taken here", n.Line, tag)
	}
	switch n.Kind {
	case yaml.MappingNode:
		entries, err := mappingEntries(n, depth)
		if err != nil {
			return err
		}
		var fields protoreflect.FieldDescriptors
		if md := messageOf(fd, whole); md != nil {
			fields = md.Fields()
		}
		w.buf.WriteByte('{')
		for i, e := range entries {
			k, v := e[0], e[1]
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a mapping key must be a plain value", k.Line)
			}
			if i > 0 {
				w.buf.WriteByte(',')
			}
			if err := w.newline(k.Line); err != nil {
				return err
			}
			w.quote(k.Value)
			w.buf.WriteString(": ")
			var child protoreflect.FieldDescriptor
			switch {
			case fd != nil && whole && fd.IsMap():
				child = fd.MapValue()
			case fields != nil:
				if child = fields.ByJSONName(k.Value); child == nil {
					child = fields.ByName(protoreflect.Name(k.Value))
				}
			}
			if err := w.value(v, child, true, depth+1); err != nil {
				return err
			}
		}
		if len(entries) > 0 {
			if err := w.newline(n.Line); err != nil {
				return err
			}
		}
		w.buf.WriteByte('}')
	case yaml.SequenceNode:
		var elem protoreflect.FieldDescriptor
		if fd != nil && whole && fd.IsList() {
			elem = fd
		}
		w.buf.WriteByte('[')
		for i, e := range n.Content {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			if err := w.newline(e.Line); err != nil {
				return err
			}
			if err := w.value(e, elem, false, depth+1); err != nil {
				return err
			}
		}
		if len(n.Content) > 0 {
			if err := w.newline(n.Line); err != nil {
				return err
			}
		}
		w.buf.WriteByte(']')
	case yaml.ScalarNode:
		return w.scalar(n, fd != nil && !collection && fd.Kind() == protoreflect.StringKind)
	default:
		return fmt.Errorf("line %d: an alias to nothing", n.Line)
	}
	return nil
}

// messageOf is the message whose fields a mapping for fd holds, nil for
// anything else: a list or map as a whole, a scalar, a well-known type
// (whose JSON is its own).
func messageOf(fd protoreflect.FieldDescriptor, whole bool) protoreflect.MessageDescriptor {
	if fd == nil || whole && (fd.IsList() || fd.IsMap()) {
		return nil
	}
	md := fd.Message()
	if md == nil || strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return nil
	}
	return md
}

// mappingEntries are n's keys and values, with YAML's merge keys (<<)
// merged: a key of n wins over a merged one, an earlier merged mapping
// over a later.
func mappingEntries(n *yaml.Node, depth int) ([][2]*yaml.Node, error) {
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("line %d: nested over %d deep", n.Line, maxYAMLDepth)
	}
	var own, merged [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			own = append(own, [2]*yaml.Node{k, v})
			seen[k.Value] = true
			continue
		}
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, s := range sources {
			if s.Kind == yaml.AliasNode && s.Alias != nil {
				s = s.Alias
			}
			if s.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: << merges a mapping, or a list of them", s.Line)
			}
			sub, err := mappingEntries(s, depth+1)
			if err != nil {
				return nil, err
			}
			merged = append(merged, sub...)
		}
	}
	for _, e := range merged {
		if !seen[e[0].Value] {
			seen[e[0].Value] = true
			own = append(own, e)
		}
	}
	return own, nil
}

// scalar writes a scalar: as a string when str, else as its YAML type
// says.
func (w *yamlJSON) scalar(n *yaml.Node, str bool) error {
	tag := n.ShortTag()
	switch {
	case tag == "!!null":
		w.buf.WriteString("null")
		return nil
	case str, tag == "!!str", tag == "!!timestamp", tag == "!!binary":
		if !utf8.ValidString(n.Value) {
			return fmt.Errorf("line %d: not UTF-8 text", n.Line)
		}
		w.quote(n.Value)
		return nil
	}
	switch tag {
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return yamlError(err)
		}
		w.buf.WriteString(strconv.FormatBool(b))
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			w.buf.WriteString(strconv.FormatInt(i, 10))
			return nil
		}
		var u uint64
		if err := n.Decode(&u); err != nil {
			return fmt.Errorf("line %d: the number %s is out of range", n.Line, n.Value)
		}
		w.buf.WriteString(strconv.FormatUint(u, 10))
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return yamlError(err)
		}
		switch {
		case math.IsNaN(f):
			w.buf.WriteString(`"NaN"`)
		case math.IsInf(f, 1):
			w.buf.WriteString(`"Infinity"`)
		case math.IsInf(f, -1):
			w.buf.WriteString(`"-Infinity"`)
		default:
			w.buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
	default:
		return fmt.Errorf("line %d: the YAML tag %s is not taken here", n.Line, tag)
	}
	return nil
}
