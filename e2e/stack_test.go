package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

// supportAddress is the address customers write to in every scenario.
const supportAddress = "support@acme.test"

// stack is casedesk serve with everything real around it: Dovecot holding
// the support mailbox, the SMTP sink receiving what casedesk sends, and a
// PostgreSQL database of the test's own.
type stack struct {
	t      testing.TB
	imap   *Dovecot
	smtp   *SMTPSink
	env    map[string]string
	base   string // the admin API, http://127.0.0.1:port
	key    string // an admin API key (CASEDESK_BOOTSTRAP_ADMIN_KEY)
	engine *Engine
}

// newStack starts Dovecot and the SMTP sink, migrates a new database and
// returns the environment for casedesk; start runs the engine.
func newStack(t testing.TB, extra map[string]string) *stack {
	t.Helper()
	st := &stack{t: t, imap: startDovecot(t), smtp: startSMTPSink(t)}
	// A new database's first tenant gets ID 1: the default tenant serve
	// creates.
	st.key, _ = casedesk.NewAPIKeySecret(1)
	addr := "127.0.0.1:" + freePort(t)
	st.base = "http://" + addr
	st.env = map[string]string{
		"CASEDESK_DATABASE_URL":        newDatabase(t),
		"CASEDESK_SUPPORT_ADDRESS":     supportAddress,
		"CASEDESK_IMAP_URL":            st.imap.URL("support"),
		"CASEDESK_SMTP_URL":            st.smtp.URL(),
		"CASEDESK_HTTP_ADDR":           addr,
		"CASEDESK_BOOTSTRAP_ADMIN_KEY": st.key,
		"CASEDESK_LOG_LEVEL":           "info",
	}
	for k, v := range extra {
		st.env[k] = v
	}
	if _, err := runCommand(t, st.env, "migrate"); err != nil {
		t.Fatal(err)
	}
	return st
}

// start runs casedesk serve and waits until it is ready.
func (st *stack) start() {
	st.t.Helper()
	st.engine = startEngine(st.t, st.env)
	waitHTTP(st.t, st.base+"/readyz", 30*time.Second)
}

// api makes an admin API request with the admin key; body, when not nil,
// is sent as JSON, and the answer is decoded into out when it is not nil.
// It returns the status code.
func (st *stack) api(method, path string, body, out any) int {
	st.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, st.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+st.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			st.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	if resp.StatusCode >= 300 {
		st.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

// apiCase is the part of a case the scenarios look at.
type apiCase struct {
	Number       int64  `json:"number"`
	Subject      string `json:"subject"`
	Status       string `json:"status"`
	MessageCount int    `json:"message_count"`
	Requester    struct {
		Email string `json:"email"`
	} `json:"requester"`
}

// caseByNumber reads one case through the API.
func (st *stack) caseByNumber(n int64) apiCase {
	st.t.Helper()
	var c apiCase
	if code := st.api("GET", fmt.Sprintf("/v1/cases/%d", n), nil, &c); code != 200 {
		st.t.Fatalf("GET case %d: %d", n, code)
	}
	return c
}

// allCases pages through every case.
func (st *stack) allCases() []apiCase {
	st.t.Helper()
	var all []apiCase
	cursor := ""
	for {
		var page struct {
			Cases      []apiCase `json:"cases"`
			NextCursor string    `json:"next_cursor"`
		}
		path := "/v1/cases?limit=200&sort=number"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if code := st.api("GET", path, nil, &page); code != 200 {
			st.t.Fatalf("list cases: %d", code)
		}
		all = append(all, page.Cases...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// waitCase polls a case until cond holds.
func (st *stack) waitCase(n int64, timeout time.Duration, what string, cond func(apiCase) bool) apiCase {
	st.t.Helper()
	var c apiCase
	err := poll(timeout, func() error {
		var code int
		if code = st.api("GET", fmt.Sprintf("/v1/cases/%d", n), nil, &c); code == 200 && cond(c) {
			return nil
		}
		return fmt.Errorf("case %d (status %d): %+v", n, code, c)
	})
	if err != nil {
		st.t.Fatalf("waiting for case %d: %s: %v", n, what, err)
	}
	return c
}

// metrics reads the engine's /metrics into name{labels} -> value.
func (st *stack) metrics() map[string]float64 {
	st.t.Helper()
	resp, err := http.Get(st.base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// to returns the messages whose envelope recipients include addr.
func to(msgs []Received, addr string) []Received {
	var out []Received
	for _, m := range msgs {
		for _, r := range m.Rcpt {
			if strings.EqualFold(r, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// reply builds an answer to a message, the way a mail client does: to
// target, or else its Reply-To (or From), "Re:" its subject, threaded on
// it.
func reply(from, target string, m Received, body string, id int) []byte {
	if target == "" {
		target = m.Header("Reply-To")
	}
	if target == "" {
		target = m.Header("From")
	}
	refs := strings.TrimSpace(m.Header("References") + " " + m.Header("Message-ID"))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: Re: %s\r\n", from, target, m.Header("Subject"))
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <e2e-reply-%d-%d@customer.test>\r\n", time.Now().Format(time.RFC1123Z), id, time.Now().UnixNano())
	fmt.Fprintf(&b, "In-Reply-To: %s\r\nReferences: %s\r\n", m.Header("Message-ID"), refs)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n") + "\r\n")
	return b.Bytes()
}
