package templates

import (
	"fmt"
	"text/template/parse"

	"github.com/casedesk/casedesk"
)

// allowed are the functions a template may call. Left out are the
// built-ins that can make much output from little (printf "%999999d"),
// escape a second time (html, js, urlquery) or reach past the data (call,
// index, slice): none is needed with this package's data, and without them
// the cost of a render follows from the sizes of template and data.
var allowed = map[string]bool{
	"and": true, "or": true, "not": true, "len": true,
	"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"date": true, "money": true, "nl2br": true,
}

// maxNL2BR bounds the calls of nl2br in a part: its cost grows with the
// text it is given (an agent's reply), so that many calls of it could
// make one render slow.
const maxNL2BR = 10

// checkTrees refuses what could make a render cost more than its size
// suggests: {{range}} (the data has no lists, so it could only loop over a
// number), {{define}}, {{block}} and {{template}}, whose calls can nest
// into exponential work, functions not in allowed, and nl2br more than
// maxNL2BR times. What is left runs each action at most once, and the
// output is capped.
func checkTrees(part string, main *parse.Tree, all []*parse.Tree) error {
	for _, t := range all {
		if t != nil && t != main {
			return treeError(part, t, t.Root, "{{define}} and {{block}} are not allowed")
		}
	}
	if main == nil {
		return casedesk.Errorf(casedesk.EINVALID, "%s is empty", part)
	}
	w := walker{}
	w.node(main.Root)
	if w.bad != nil {
		return treeError(part, main, w.bad, w.why)
	}
	return nil
}

// walker looks for the first node a template may not have.
type walker struct {
	bad   parse.Node
	why   string
	nl2br int // calls of nl2br so far
}

func (w *walker) fail(n parse.Node, why string) {
	if w.bad == nil {
		w.bad, w.why = n, why
	}
}

func (w *walker) node(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		for i := 0; n != nil && i < len(n.Nodes) && w.bad == nil; i++ {
			w.node(n.Nodes[i])
		}
	case *parse.ActionNode:
		w.pipe(n.Pipe)
	case *parse.IfNode:
		w.pipe(n.Pipe)
		w.node(n.List)
		w.node(n.ElseList)
	case *parse.WithNode:
		w.pipe(n.Pipe)
		w.node(n.List)
		w.node(n.ElseList)
	case *parse.RangeNode:
		w.fail(n, "{{range}} is not allowed")
	case *parse.TemplateNode:
		w.fail(n, "{{template}} and {{block}} are not allowed")
	}
}

func (w *walker) pipe(p *parse.PipeNode) {
	if p == nil {
		return
	}
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			w.arg(a)
		}
	}
}

func (w *walker) arg(n parse.Node) {
	switch n := n.(type) {
	case *parse.IdentifierNode:
		if !allowed[n.Ident] {
			w.fail(n, fmt.Sprintf("function %q is not allowed", n.Ident))
		}
		if n.Ident == "nl2br" {
			if w.nl2br++; w.nl2br > maxNL2BR {
				w.fail(n, fmt.Sprintf("nl2br is called more than %d times", maxNL2BR))
			}
		}
	case *parse.PipeNode:
		w.pipe(n)
	case *parse.ChainNode:
		w.arg(n.Node)
	}
}

func treeError(part string, t *parse.Tree, n parse.Node, msg string) error {
	loc, _ := t.ErrorContext(n)
	return partError(part, fmt.Errorf("template: %s: %s", loc, msg))
}
