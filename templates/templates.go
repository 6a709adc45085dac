// Package templates renders the mail casedesk sends to customers, from
// embedded default templates in English and German and from tenants'
// overrides of them, which are checked before they are saved.
//
// A template has three parts: a subject and a plain-text body
// (text/template) and an HTML body (html/template, which escapes every
// value for where it appears). Its data is a struct of this package:
// AckData for "ack", RelayData for "relay", and so on; the names are the
// outbox kinds.
//
// The rendered subject is one line and never carries the "[Case #123]"
// tag: the sender adds the tag, exactly once, so no template can drop or
// double it.
//
// The package reads nothing but its embedded files and never the clock.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/casedesk/casedesk"
)

// DefaultLang is the language every template has a default in, and the
// last resort when looking a template up.
const DefaultLang = casedesk.DefaultLanguage

// Rendered is a rendered template: a one-line subject without the case
// tag, a plain-text body and an HTML body.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// key names a template in one language.
type key struct {
	name casedesk.OutboxKind
	lang string
}

// Set is a tenant's templates: its overrides in front of the defaults.
// A nil *Set has no overrides. A Set is safe for concurrent use.
type Set struct {
	overrides map[key]*compiled
}

// NewSet checks and parses a tenant's overrides, refusing the whole set
// with an EINVALID error naming the first bad one.
func NewSet(overrides ...casedesk.TemplateOverride) (*Set, error) {
	s := &Set{overrides: make(map[key]*compiled, len(overrides))}
	for _, o := range overrides {
		c, err := compileOverride(o)
		if err != nil {
			return nil, casedesk.Errorf(casedesk.EINVALID, "template %q in %q: %s",
				clipQuoted(o.Name), clipQuoted(o.Lang), casedesk.ErrorMessage(err))
		}
		k := key{c.name, c.lang}
		if s.overrides[k] != nil {
			return nil, casedesk.Errorf(casedesk.EINVALID, "template %q in %q is overridden twice", c.name, c.lang)
		}
		s.overrides[k] = c
	}
	return s, nil
}

// Render renders the named template in lang with data, which must be the
// template's data type (AckData for "ack", ...) or a pointer to it.
//
// The template used is the first there is of: the tenant's override in
// lang, the default in lang, the same two in lang's base language ("de"
// for "de-AT"), the tenant's override in English, the default in English.
// A lang that is not a language tag counts as English.
func (s *Set) Render(name casedesk.OutboxKind, lang string, data any) (Rendered, error) {
	sp, ok := specOf(name)
	if !ok {
		return Rendered{}, unknownName(string(name))
	}
	if err := sp.accepts(data); err != nil {
		return Rendered{}, err
	}
	c := s.lookup(name, lang)
	r, err := c.render(data)
	if err != nil {
		return Rendered{}, fmt.Errorf("render %s: %w", c.describe(), err)
	}
	return r, nil
}

// lookup finds the template for name in lang, in the order Render
// documents. Every name has an English default, so it always finds one.
func (s *Set) lookup(name casedesk.OutboxKind, lang string) *compiled {
	lang = canonLang(lang)
	for _, l := range [...]string{lang, baseLang(lang), DefaultLang} {
		if l == "" {
			continue
		}
		if s != nil {
			if c := s.overrides[key{name, l}]; c != nil {
				return c
			}
		}
		if c := defaults[key{name, l}]; c != nil {
			return c
		}
	}
	panic("templates: no English default for " + string(name))
}

// Validate checks a tenant's override without saving it: the name must be
// a template's, the language a tag such as "en" or "de-AT", the text and
// HTML bodies present, and every part within its size limit, parsed and
// rendered with the template's sample data and with empty data. An empty
// subject keeps the default subject of the language (or of English).
//
// A template may use the data's fields, variables, {{if}} and {{with}},
// and the functions and, or, not, len, eq, ne, lt, le, gt, ge, date,
// money, and in the HTML body nl2br; {{range}}, {{define}}, {{block}},
// {{template}} and other functions are refused.
//
// The error is EINVALID and names the part and, where known, the line:
// "html body, line 3: function \"shout\" not defined".
func Validate(o casedesk.TemplateOverride) error {
	_, err := compileOverride(o)
	return err
}

func compileOverride(o casedesk.TemplateOverride) (*compiled, error) {
	sp, ok := specOf(casedesk.OutboxKind(o.Name))
	if !ok {
		return nil, unknownName(o.Name)
	}
	lang := canonLang(o.Lang)
	if lang == "" {
		return nil, casedesk.Errorf(casedesk.EINVALID, "language %q is not a language tag such as \"en\" or \"de-AT\"", clipQuoted(o.Lang))
	}
	if err := checkSizes(o); err != nil {
		return nil, err
	}
	c, err := compile(sp, lang, source{o.Subject, o.Text, o.HTML}, defaultFor(sp.name, lang).subject)
	if err != nil {
		return nil, err
	}
	c.override = true
	if err := c.check(sp); err != nil {
		return nil, err
	}
	return c, nil
}

func checkSizes(o casedesk.TemplateOverride) error {
	switch {
	case len(o.Subject) > MaxSubjectBytes:
		return casedesk.Errorf(casedesk.EINVALID, "%s is longer than %d bytes", partSubject, MaxSubjectBytes)
	case len(o.Text) > MaxBodyBytes:
		return casedesk.Errorf(casedesk.EINVALID, "%s is longer than %d bytes", partText, MaxBodyBytes)
	case len(o.HTML) > MaxBodyBytes:
		return casedesk.Errorf(casedesk.EINVALID, "%s is longer than %d bytes", partHTML, MaxBodyBytes)
	case strings.TrimSpace(o.Text) == "":
		return casedesk.Errorf(casedesk.EINVALID, "%s is empty", partText)
	case strings.TrimSpace(o.HTML) == "":
		return casedesk.Errorf(casedesk.EINVALID, "%s is empty", partHTML)
	}
	return nil
}

// Preview renders the named template in lang with its sample data: the
// override o if it is not nil (checked as Validate does; its empty Name
// and Lang are taken from name and lang), else the default.
func Preview(name casedesk.OutboxKind, lang string, o *casedesk.TemplateOverride) (Rendered, error) {
	sp, ok := specOf(name)
	if !ok {
		return Rendered{}, unknownName(string(name))
	}
	if o == nil {
		var none *Set
		return none.Render(name, lang, sp.sample())
	}
	ov := *o
	if ov.Name == "" {
		ov.Name = string(name)
	}
	if ov.Lang == "" {
		ov.Lang = lang
	}
	if ov.Name != string(name) || canonLang(ov.Lang) != canonLang(lang) {
		return Rendered{}, casedesk.Errorf(casedesk.EINVALID, "the override is for %q in %q, not %q in %q",
			clipQuoted(ov.Name), clipQuoted(ov.Lang), name, clipQuoted(lang))
	}
	c, err := compileOverride(ov)
	if err != nil {
		return Rendered{}, err
	}
	return c.render(sp.sample())
}

func unknownName(name string) error {
	known := make([]string, len(specs))
	for i, s := range specs {
		known[i] = string(s.name)
	}
	return casedesk.Errorf(casedesk.EINVALID, "template %q is unknown; the templates are %s",
		clipQuoted(name), strings.Join(known, ", "))
}

// clipQuoted cuts a value that goes into an error message to a readable length.
func clipQuoted(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

//go:embed defaults
var defaultFiles embed.FS

// defaults are the embedded templates, parsed and checked once.
var defaults = mustLoadDefaults(defaultFiles)

// Langs returns the languages the default templates are written in.
func Langs() []string {
	var out []string
	for k := range defaults {
		if k.name == casedesk.OutboxAck {
			out = append(out, k.lang)
		}
	}
	slices.Sort(out)
	return out
}

// defaultFor returns the default template for name in lang, its base
// language, or English.
func defaultFor(name casedesk.OutboxKind, lang string) *compiled {
	var none *Set
	return none.lookup(name, lang)
}

func mustLoadDefaults(fsys fs.FS) map[key]*compiled {
	d, err := loadDefaults(fsys)
	if err != nil {
		panic("templates: embedded defaults: " + err.Error())
	}
	return d
}

// loadDefaults reads defaults/LANG/NAME.subject, NAME.txt and NAME.html
// for every language directory and template, and checks them as
// overrides are checked. English must be there, and nothing else may.
func loadDefaults(fsys fs.FS) (map[key]*compiled, error) {
	dirs, err := fs.ReadDir(fsys, "defaults")
	if err != nil {
		return nil, err
	}
	out := map[key]*compiled{}
	for _, dir := range dirs {
		lang := dir.Name()
		if canonLang(lang) != lang {
			return nil, fmt.Errorf("%q is not a language tag", lang)
		}
		files, err := fs.ReadDir(fsys, path.Join("defaults", lang))
		if err != nil {
			return nil, err
		}
		if len(files) != 3*len(specs) {
			return nil, fmt.Errorf("%s: %d files, want %d: a subject, text and html file per template", lang, len(files), 3*len(specs))
		}
		for _, sp := range specs {
			c, err := loadDefault(fsys, sp, lang)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", lang, sp.name, err)
			}
			out[key{sp.name, lang}] = c
		}
	}
	if out[key{casedesk.OutboxAck, DefaultLang}] == nil {
		return nil, fmt.Errorf("no %s defaults", DefaultLang)
	}
	return out, nil
}

func loadDefault(fsys fs.FS, sp spec, lang string) (*compiled, error) {
	var parts [3]string
	for i, ext := range [...]string{".subject", ".txt", ".html"} {
		b, err := fs.ReadFile(fsys, path.Join("defaults", lang, string(sp.name)+ext))
		if err != nil {
			return nil, err
		}
		parts[i] = string(b)
	}
	c, err := compile(sp, lang, source{parts[0], parts[1], parts[2]}, nil)
	if err != nil {
		return nil, err
	}
	return c, c.check(sp)
}
