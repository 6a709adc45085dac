package ingest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/casedesk/casedesk"
)

// Class is what kind of mail a message is; it decides whether it may open
// a case and whether casedesk may answer it.
type Class string

// Classes, in the order the classifier tests them.
const (
	ClassLoop        Class = "loop"
	ClassBounce      Class = "bounce"
	ClassAutoReply   Class = "auto_reply"
	ClassBulk        Class = "bulk"
	ClassErrorReport Class = "error_report"
	ClassNormal      Class = "normal"
)

// Classification is the classifier's verdict on one message.
type Classification struct {
	Class Class
	// MayAutoReply is false whenever answering could start a mail loop or
	// bother a machine: any automatic, bulk or looping mail, and mail
	// that asks not to be answered.
	MayAutoReply bool
	// Reason names the rule that decided, for logs and case events.
	Reason string
	// Bounce is set for ClassBounce.
	Bounce *DeliveryReport
	// Report is set for ClassErrorReport.
	Report *ErrorReport
}

// ErrorReport is a structured report sent by an application.
type ErrorReport struct {
	Product     string `json:"product"`
	Tenant      string `json:"tenant"`
	ErrorID     string `json:"error_id"`
	Message     string `json:"message"`
	Stack       string `json:"stack"`
	UserText    string `json:"user_text,omitempty"`
	Fingerprint string `json:"fingerprint"`
}

// ClassifierConfig holds what identifies our own mail and error reports.
type ClassifierConfig struct {
	// SupportAddresses are our own addresses; mail from them is a loop.
	SupportAddresses []string
	// LoopValue is the X-Loop value casedesk puts on its outbound mail.
	LoopValue string
	// ErrorReportSenders are addresses whose mail is an error report.
	ErrorReportSenders []string
	// ErrorReportHeader and ErrorReportValue mark error reports by header,
	// e.g. "X-Casedesk-Report: error". An empty name disables the rule.
	ErrorReportHeader string
	ErrorReportValue  string
}

// Classifier classifies parsed messages. It is safe for concurrent use.
type Classifier struct {
	cfg     ClassifierConfig
	ours    map[string]bool
	senders map[string]bool
}

// NewClassifier returns a classifier for one tenant's configuration.
func NewClassifier(cfg ClassifierConfig) *Classifier {
	c := &Classifier{cfg: cfg, ours: map[string]bool{}, senders: map[string]bool{}}
	for _, a := range cfg.SupportAddresses {
		c.ours[casedesk.NormalizeAgentAddress(a)] = true
	}
	for _, a := range cfg.ErrorReportSenders {
		c.senders[casedesk.NormalizeAgentAddress(a)] = true
	}
	return c
}

// outOfOffice matches subjects that out-of-office replies use. A subject is
// only a hint: it counts together with a header that marks automatic mail.
var outOfOffice = regexp.MustCompile(`(?i)^(automatic reply|auto(matic)?[- ]?reply|autoreply|out of (the )?office|abwesenheit|absence|réponse automatique|respuesta automática|risposta automatica|automatisch antwoord|frånvaro)`)

// Classify decides the class of m. The first matching rule wins: loops,
// bounces, auto-replies, bulk mail, error reports, then normal mail.
func (c *Classifier) Classify(m *Message) Classification {
	if reason := c.loop(m); reason != "" {
		return Classification{Class: ClassLoop, Reason: reason}
	}
	if b := bounce(m); b != nil {
		return Classification{Class: ClassBounce, Reason: "delivery status notification", Bounce: b}
	}
	if reason := autoReply(m); reason != "" {
		return Classification{Class: ClassAutoReply, Reason: reason}
	}
	if reason := bulk(m); reason != "" {
		return Classification{Class: ClassBulk, Reason: reason}
	}
	if c.isErrorReport(m) {
		return Classification{Class: ClassErrorReport, Reason: "error report", Report: parseErrorReport(m)}
	}
	v := Classification{Class: ClassNormal, MayAutoReply: true}
	if m.XAutoResponseSuppress != "" {
		v.MayAutoReply, v.Reason = false, "X-Auto-Response-Suppress"
	}
	return v
}

func (c *Classifier) loop(m *Message) string {
	if c.cfg.LoopValue != "" {
		for _, v := range m.XLoop {
			if strings.EqualFold(strings.TrimSpace(v), c.cfg.LoopValue) {
				return "our X-Loop"
			}
		}
	}
	if c.ours[casedesk.NormalizeAgentAddress(m.From.Email)] {
		return "sent from our support address"
	}
	return ""
}

// bounce recognises a DSN (multipart/report), and Exim's plain-text
// bounces (X-Failed-Recipients from the mailer daemon).
func bounce(m *Message) *DeliveryReport {
	if m.Delivery != nil {
		return m.Delivery
	}
	if len(m.FailedRecipients) == 0 || !fromMailer(m) {
		return nil
	}
	return &DeliveryReport{Recipient: m.FailedRecipients[0], Action: "failed",
		OriginalMessageID: quotedMessageID(m.Text)}
}

func fromMailer(m *Message) bool {
	local, _, _ := strings.Cut(strings.ToLower(m.From.Email), "@")
	return (m.HasReturnPath && m.ReturnPath == "") || local == "mailer-daemon" || local == "postmaster"
}

// quotedMessageID finds the Message-ID header of the original message that
// a plain-text bounce quotes.
func quotedMessageID(text string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(line) > 11 && strings.EqualFold(line[:11], "message-id:") {
			return firstID(line[11:])
		}
	}
	return ""
}

func autoReply(m *Message) string {
	auto := strings.ToLower(strings.TrimSpace(m.AutoSubmitted))
	switch {
	case auto != "" && auto != "no":
		return "Auto-Submitted: " + auto
	case m.XAutoreply != "":
		return "X-Autoreply"
	case m.XAutorespond != "":
		return "X-Autorespond"
	case outOfOffice.MatchString(m.Subject) && (m.XAutoResponseSuppress != "" || m.Precedence != "" || (m.HasReturnPath && m.ReturnPath == "")):
		return "out-of-office subject with an automatic-mail header"
	}
	return ""
}

func bulk(m *Message) string {
	switch p := strings.ToLower(strings.TrimSpace(m.Precedence)); p {
	case "bulk", "junk", "list":
		return "Precedence: " + p
	}
	if m.ListID != "" {
		return "List-Id"
	}
	return ""
}

func (c *Classifier) isErrorReport(m *Message) bool {
	if c.senders[casedesk.NormalizeAgentAddress(m.From.Email)] {
		return true
	}
	return c.cfg.ErrorReportHeader != "" && m.headerValue(c.cfg.ErrorReportHeader, c.cfg.ErrorReportValue)
}

// parseErrorReport reads the report's fields from a JSON attachment, or
// else from "Key: value" lines of the text; everything after a "Stack:"
// line is the stack.
func parseErrorReport(m *Message) *ErrorReport {
	r := &ErrorReport{}
	for _, a := range m.Attachments {
		if a.ContentType == "application/json" || strings.HasSuffix(strings.ToLower(a.Name), ".json") {
			if json.Unmarshal(a.Content, r) == nil {
				break
			}
		}
	}
	if r.Product == "" && r.ErrorID == "" && r.Message == "" {
		readReportLines(m.Text, r)
	}
	r.Fingerprint = fingerprint(r)
	return r
}

func readReportLines(text string, r *ErrorReport) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var user []string
	for i, line := range lines {
		key, value, ok := strings.Cut(line, ":")
		k := strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		switch {
		case ok && k == "stack":
			r.Stack = strings.TrimSpace(value + "\n" + strings.Join(lines[i+1:], "\n"))
			r.UserText = strings.TrimSpace(strings.Join(user, "\n"))
			return
		case ok && k == "product":
			r.Product = value
		case ok && k == "tenant":
			r.Tenant = value
		case ok && (k == "error id" || k == "error-id" || k == "error_id"):
			r.ErrorID = value
		case ok && (k == "message" || k == "error"):
			r.Message = value
		default:
			user = append(user, line)
		}
	}
	r.UserText = strings.TrimSpace(strings.Join(user, "\n"))
}

// digits are replaced when fingerprinting, so "timeout after 3012 ms" and
// "timeout after 2990 ms" group together.
var digits = regexp.MustCompile(`[0-9]+`)

// fingerprint groups repeats of one error: the product with the error id
// when there is one, else with the message and the top stack frame, numbers
// masked.
func fingerprint(r *ErrorReport) string {
	key := strings.ToLower(r.Product) + "\n"
	if r.ErrorID != "" {
		key += "id:" + r.ErrorID
	} else {
		top, _, _ := strings.Cut(strings.TrimSpace(r.Stack), "\n")
		key += "msg:" + digits.ReplaceAllString(r.Message+"\n"+strings.TrimSpace(top), "#")
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
