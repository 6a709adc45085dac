package templates

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"reflect"
	"regexp"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/casedesk/casedesk"
)

// Limits on the parts of an override and on what one part may render to.
const (
	MaxSubjectBytes = 1 << 10  // a subject template
	MaxBodyBytes    = 64 << 10 // a text or HTML body template
	maxOutputBytes  = 1 << 20  // one rendered part
)

// The parts of a template as error messages name them.
const (
	partSubject = "subject"
	partText    = "text body"
	partHTML    = "html body"
)

// compiled is one template, default or override, parsed once and safe for
// concurrent use.
type compiled struct {
	name     casedesk.OutboxKind
	lang     string
	override bool
	subject  *texttemplate.Template
	text     *texttemplate.Template
	html     *htmltemplate.Template
	// Output buffer sizes to start with, from the sources' sizes.
	textHint, htmlHint int
}

// source is the text of a template's three parts.
type source struct{ subject, text, html string }

// compile parses the parts of a template for sp in lang. An empty subject
// takes defaultSubject.
func compile(sp spec, lang string, src source, defaultSubject *texttemplate.Template) (*compiled, error) {
	c := &compiled{name: sp.name, lang: lang, subject: defaultSubject,
		textHint: len(src.text) + 256, htmlHint: len(src.html) + 512}
	var err error
	if src.subject != "" {
		if c.subject, err = parseText("subject", partSubject, src.subject, lang); err != nil {
			return nil, err
		}
	}
	if c.subject == nil {
		return nil, casedesk.Errorf(casedesk.EINVALID, "%s is empty", partSubject)
	}
	if c.text, err = parseText("text", partText, src.text, lang); err != nil {
		return nil, err
	}
	h, err := htmltemplate.New("html").Option("missingkey=error").Funcs(funcs(lang, true)).Parse(src.html)
	if err != nil {
		return nil, partError(partHTML, err)
	}
	var trees []*parse.Tree
	for _, t := range h.Templates() {
		trees = append(trees, t.Tree)
	}
	if err := checkTrees(partHTML, h.Tree, trees); err != nil {
		return nil, err
	}
	c.html = h
	return c, nil
}

func parseText(name, part, src, lang string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(name).Option("missingkey=error").Funcs(funcs(lang, false)).Parse(src)
	if err != nil {
		return nil, partError(part, err)
	}
	var trees []*parse.Tree
	for _, d := range t.Templates() {
		trees = append(trees, d.Tree)
	}
	if err := checkTrees(part, t.Tree, trees); err != nil {
		return nil, err
	}
	return t, nil
}

// location matches the "template: NAME:LINE: ...", "template: NAME:LINE:COL: ..."
// and "html/template:NAME:LINE:COL: ..." prefixes of the template packages'
// errors; the line is optional.
var location = regexp.MustCompile(`^(?:html/)?template: ?[^:\s]+:(?:(\d+)(?::\d+)?:)? (?s:(.*))$`)

// executing is the part of an execution error that names the template
// (always the part itself here) rather than the problem.
var executing = regexp.MustCompile(`^executing "[^"]*" at `)

// unclosed is text/template's message for an action that is never closed.
var unclosed = regexp.MustCompile(`^unclosed action started at [^:\s]+:(\d+)$`)

// partError turns an error of the template packages into an EINVALID error
// that names the part and, where known, the line: "html body, line 3: ...".
func partError(part string, err error) error {
	var he *htmltemplate.Error
	if errors.As(err, &he) && he.ErrorCode == htmltemplate.ErrEndContext {
		// The stock message prints the escaper's internal state.
		return casedesk.Errorf(casedesk.EINVALID, "%s: ends inside a tag, attribute, comment or script that is not closed", part)
	}
	msg := err.Error()
	m := location.FindStringSubmatch(msg)
	if m == nil {
		return casedesk.Errorf(casedesk.EINVALID, "%s: %s", part, msg)
	}
	line, detail := m[1], executing.ReplaceAllString(m[2], "")
	// The lexer reports an unclosed action where the input ends; where it
	// started is the line to fix.
	if u := unclosed.FindStringSubmatch(detail); u != nil {
		line, detail = u[1], "unclosed action"
	}
	if line == "" {
		return casedesk.Errorf(casedesk.EINVALID, "%s: %s", part, detail)
	}
	return casedesk.Errorf(casedesk.EINVALID, "%s, line %s: %s", part, line, detail)
}

// errTooLong stops a template whose output passes maxOutputBytes.
var errTooLong = fmt.Errorf("renders more than %d bytes", maxOutputBytes)

// capped collects output up to maxOutputBytes; the template packages stop
// executing at the first failed write.
type capped struct{ strings.Builder }

func (w *capped) Write(p []byte) (int, error) {
	if w.Len()+len(p) > maxOutputBytes {
		return 0, errTooLong
	}
	return w.Builder.Write(p)
}

// render executes the three parts with data, which must be of the
// template's data type.
func (c *compiled) render(data any) (Rendered, error) {
	subject, err := execute(c.subject, partSubject, data, 128)
	if err != nil {
		return Rendered{}, err
	}
	text, err := execute(c.text, partText, data, c.textHint)
	if err != nil {
		return Rendered{}, err
	}
	html, err := execute(c.html, partHTML, data, c.htmlHint)
	if err != nil {
		return Rendered{}, err
	}
	return Rendered{Subject: oneLine(subject), Text: text, HTML: html}, nil
}

// executor is a parsed text or HTML template.
type executor interface {
	Execute(w io.Writer, data any) error
}

func execute(t executor, part string, data any, sizeHint int) (string, error) {
	var w capped
	w.Grow(sizeHint)
	if err := t.Execute(&w, data); err != nil {
		return "", partError(part, err)
	}
	return w.String(), nil
}

// check renders c with its sample data, in which every field is set, and
// with empty data, so that both ways through an {{if}} or {{with}} on a
// field run once: an unknown field anywhere on those paths is found now,
// not when a customer is waiting for the mail.
func (c *compiled) check(sp spec) error {
	r, err := c.render(sp.sample())
	if err != nil {
		return err
	}
	if r.Subject == "" {
		return casedesk.Errorf(casedesk.EINVALID, "%s renders empty", partSubject)
	}
	_, err = c.render(reflect.Zero(sp.typ).Interface())
	return err
}

// describe names the template in errors: `"ack" in "de" (tenant override)`.
func (c *compiled) describe() string {
	origin := "default"
	if c.override {
		origin = "tenant override"
	}
	return fmt.Sprintf("%q in %q (%s)", c.name, c.lang, origin)
}
