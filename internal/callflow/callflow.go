// Package callflow writes and reads Opentact's call-flow XML (the dialplan
// a Call Control App runs) as the typed opentact.call.v1.CallFlow.
//
//   - Render writes a flow as XML.
//   - Parse reads XML into a flow, strictly: anything the messages cannot
//     hold exactly is an error, and the caller shows the XML as it is.
//   - Check is what the facade asks of hand-written XML before sending it:
//     well-formed, bounded, one <Response> root, and only verbs Opentact
//     documents, typed or not.
//
// Every error about XML is an *Error naming the line.
//
// Round trip: Parse(Render(f)) equals f for every flow Render takes, and
// Render's output passes Check. Parse drops what the messages do not hold:
// comments, the XML declaration, whitespace between elements, and the order
// of a verb's children of different kinds (a <Gather>'s filler verbs are
// written before its <DTMF> branches, then <Default>, then <Error>). The
// text of an element that has text (<Say>, <Play>, <To>) is kept exactly,
// whitespace and all; Render adds no whitespace inside it, and writes line
// breaks and tabs in text and attributes as character references, so that
// every element stays on one line.
package callflow

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// The bounds of a flow, for Check, Parse and Render alike.
const (
	// MaxBytes is the most XML taken, 64 KiB.
	MaxBytes = 64 << 10
	// MaxDepth is how deep elements nest, <Response> being depth 1.
	MaxDepth = 16
	// MaxElements is the most elements in a flow, <Response> included.
	MaxElements = 1000
)

// Error is what is wrong with call-flow XML, and where.
type Error struct {
	// Line is the 1-based line of the input where the fault is.
	Line int
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Check reports whether xml may be sent to Opentact as a call flow: at most
// MaxBytes, well-formed, no DTD, no namespaces, a single <Response> root,
// every element below it a verb Opentact documents (typed or not, such as
// <Tone>), nested at most MaxDepth deep, at most MaxElements elements. It
// does not check which verb may sit inside which, nor attribute values.
func Check(xml []byte) error {
	if err := walk(xml, nil); err != nil {
		return err
	}
	return nil
}

// A handler takes the elements walk has checked.
type handler interface {
	start(name string, attrs []xml.Attr, line int) *Error
	end(line int) *Error
	text(data []byte, line int) *Error
}

// walk reads data as a flow's XML, enforcing what Check promises, and hands
// each element and text to h (if not nil).
func walk(data []byte, h handler) *Error {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	lines := &lineCounter{data: data, line: 1}
	if len(data) > MaxBytes {
		return &Error{Line: lines.at(MaxBytes), Msg: fmt.Sprintf("the XML is %d bytes, over the limit of %d", len(data), MaxBytes)}
	}
	t := tables()
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var (
		depth, count     int
		rootSeen, closed bool
		names            []string
	)
	for {
		line := lines.at(int(d.InputOffset()))
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if se := (*xml.SyntaxError)(nil); errors.As(err, &se) {
				return &Error{Line: se.Line, Msg: "XML syntax error: " + se.Msg}
			}
			return &Error{Line: line, Msg: "XML syntax error: " + strings.TrimPrefix(err.Error(), "xml: ")}
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if e := checkNames(tok, line); e != nil {
				return e
			}
			name := tok.Name.Local
			switch {
			case depth == 0 && closed:
				return &Error{Line: line, Msg: fmt.Sprintf("a second root element <%s> after </%s>", name, rootName)}
			case depth == 0 && name != rootName:
				return &Error{Line: line, Msg: fmt.Sprintf("the root element is <%s>, not <%s>", name, rootName)}
			case depth > 0 && name == rootName:
				return &Error{Line: line, Msg: fmt.Sprintf("<%s> inside <%s>: it is only the root", rootName, names[len(names)-1])}
			case depth > 0 && !t.known[name]:
				return &Error{Line: line, Msg: fmt.Sprintf("unknown verb <%s>", name)}
			}
			rootSeen = true
			depth++
			count++
			if depth > MaxDepth {
				return &Error{Line: line, Msg: fmt.Sprintf("<%s> is nested %d deep, over the limit of %d", name, depth, MaxDepth)}
			}
			if count > MaxElements {
				return &Error{Line: line, Msg: fmt.Sprintf("more than %d elements", MaxElements)}
			}
			names = append(names, name)
			if h != nil {
				if e := h.start(name, tok.Attr, line); e != nil {
					return e
				}
			}
		case xml.EndElement:
			depth--
			names = names[:len(names)-1]
			if depth == 0 {
				closed = true
			}
			if h != nil {
				if e := h.end(line); e != nil {
					return e
				}
			}
		case xml.CharData:
			if depth == 0 {
				if !isSpace(tok) {
					return &Error{Line: line, Msg: fmt.Sprintf("text outside <%s>", rootName)}
				}
				continue
			}
			if h != nil {
				if e := h.text(tok, line); e != nil {
					return e
				}
			}
		case xml.ProcInst:
			if tok.Target != "xml" {
				return &Error{Line: line, Msg: fmt.Sprintf("a processing instruction <?%s?> is not allowed", tok.Target)}
			}
		case xml.Directive:
			word, _, _ := strings.Cut(string(tok), " ")
			return &Error{Line: line, Msg: fmt.Sprintf("<!%s> is not allowed: no DTD, no entities", quoteShort(word))}
		case xml.Comment:
		}
	}
	if !rootSeen {
		return &Error{Line: lines.at(len(data)), Msg: fmt.Sprintf("no <%s> element", rootName)}
	}
	return nil
}

// checkNames refuses namespaces (Opentact's verbs have none) and an
// attribute given twice (XML's own rule, which encoding/xml leaves to us).
func checkNames(tok xml.StartElement, line int) *Error {
	if tok.Name.Space != "" {
		return &Error{Line: line, Msg: fmt.Sprintf("XML namespaces are not allowed (in <%s>)", tok.Name.Local)}
	}
	for i, a := range tok.Attr {
		if a.Name.Space != "" || a.Name.Local == "xmlns" {
			return &Error{Line: line, Msg: fmt.Sprintf("XML namespaces are not allowed (in <%s>)", tok.Name.Local)}
		}
		for _, b := range tok.Attr[:i] {
			if b.Name == a.Name {
				return &Error{Line: line, Msg: fmt.Sprintf("<%s> has the attribute %s twice", tok.Name.Local, a.Name.Local)}
			}
		}
	}
	return nil
}

func isSpace(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// quoteShort is s for a message, cut to 32 runes.
func quoteShort(s string) string {
	if utf8.RuneCountInString(s) <= 32 {
		return s
	}
	r := []rune(s)
	return string(r[:32]) + "…"
}

// lineCounter gives the line of an offset, counting newlines forward from
// the last offset asked (offsets only grow).
type lineCounter struct {
	data []byte
	off  int
	line int
}

func (c *lineCounter) at(off int) int {
	off = min(off, len(c.data))
	if off > c.off {
		c.line += bytes.Count(c.data[c.off:off], []byte("\n"))
		c.off = off
	}
	return c.line
}
