package threading

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultTagPrefix is the subject tag prefix when a tenant sets none: "[Case #123]".
const DefaultTagPrefix = "Case"

// maxListTag is the longest bracketed text, in runes, that counts as a
// mailing-list tag at the start of a subject. Longer brackets are part of
// what the sender wrote.
const maxListTag = 40

// maxPrefixLen is more bytes than the longest reply or forward prefix
// word has, so a long word is not lower-cased only to be rejected.
const maxPrefixLen = 16

// subjectPrefix says whether a subject prefix marks a reply or a forward.
type subjectPrefix int

const (
	notPrefix subjectPrefix = iota
	replyPrefix
	forwardPrefix
)

// Tag returns the subject tag for a case number, e.g. Tag("Case", 123) ==
// "[Case #123]". An empty or blank prefix means DefaultTagPrefix. Runs of
// white space and square brackets in the prefix become single spaces, the
// same reading FindTag and NormalizeSubject give it.
func Tag(prefix string, number int64) string {
	return "[" + strings.Join(tagWords(prefix), " ") + " #" + strconv.FormatInt(number, 10) + "]"
}

// FindTag returns the case number of the first of our tags in subject,
// matched in any letter case and with any spacing inside the brackets:
// "[case #123]", "[CASE#123]", "[ Case  # 123 ]" all give 123. Only a
// positive number that fits in int64 counts; no tag, "[Case #]",
// "[Case #12a]", "[Case #0]", an overflowing number or a different prefix
// give ok=false. An empty prefix means DefaultTagPrefix.
func FindTag(subject, prefix string) (number int64, ok bool) {
	_, _, number, ok = findTag(subject, tagWords(prefix))
	return number, ok
}

// RemoveTags returns subject with each of our tags (as FindTag reads them,
// whatever their number) replaced by a space, including tags that only
// form once an inner one is gone. Outbound mail uses it to carry the tag
// exactly once. An empty prefix means DefaultTagPrefix.
func RemoveTags(subject, prefix string) string {
	return removeTags(subject, tagWords(prefix))
}

// NormalizeSubject returns the subject for display and comparison: reply
// and forward prefixes removed (repeated, counted and mixed forms), our tag
// removed wherever it is, mailing-list tags like "[users]" or "[EXTERNAL]"
// at the start removed, and whitespace collapsed and trimmed. When nothing
// would be left of a subject that has words, it returns the
// whitespace-collapsed original instead, so it is empty only for a blank
// subject. An empty prefix means DefaultTagPrefix.
func NormalizeSubject(subject, prefix string) string {
	collapsed := collapseSpace(subject)
	s := collapseSpace(removeTags(collapsed, tagWords(prefix)))
	s = collapseSpace(stripLeading(s))
	if s == "" {
		return collapsed
	}
	return s
}

// IsForward reports whether the outermost prefix of subject, after any
// leading bracketed tags, is a forward prefix ("Fwd:", "FW:", "WG:", "TR:",
// "RV:", "Doorst:", "Wtr:", "VL:", "Enc:", "I:") rather than a reply prefix
// or none.
func IsForward(subject string) bool {
	s := subject
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if n := matchListTag(s); n > 0 {
			s = s[n:]
			continue
		}
		_, kind := matchPrefix(s)
		return kind == forwardPrefix
	}
}

// tagWords splits a tag prefix into its words; spacing inside a prefix is
// as free as the spacing around it. Square brackets count as spaces, since
// a tag cannot hold them. Blank means DefaultTagPrefix.
func tagWords(prefix string) []string {
	words := strings.FieldsFunc(prefix, func(r rune) bool {
		return unicode.IsSpace(r) || r == '[' || r == ']'
	})
	if len(words) == 0 {
		return []string{DefaultTagPrefix}
	}
	return words
}

// collapseSpace turns every run of Unicode white space (tabs, the line
// breaks of folded headers, non-breaking spaces) into one space and trims
// both ends.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// stripLeading removes reply and forward prefixes and bracketed tags from
// the start of s, in any order and any number.
func stripLeading(s string) string {
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if n, _ := matchPrefix(s); n > 0 {
			s = s[n:]
			continue
		}
		if n := matchListTag(s); n > 0 {
			s = s[n:]
			continue
		}
		return s
	}
}

// removeTags replaces every one of our tags in s with a space, including
// tags that only form once an inner one is gone, as in "[Case [Case #1]#2]".
// A tag holds no brackets, so the only candidate ending at a "]" starts at
// the last "[" before it, and one pass over s finds them all.
func removeTags(s string, words []string) string {
	out := make([]byte, 0, len(s))
	var opens []int // positions in out of each "[" since the last kept "]"
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			opens = append(opens, len(out))
		case ']':
			if n := len(opens); n > 0 {
				start := opens[n-1]
				opens = opens[:n-1]
				tag := string(out[start:]) + "]"
				if end, _, ok := matchTagAt(tag, 0, words); ok && end == len(tag) {
					out = append(out[:start], ' ')
					continue
				}
			}
			// A kept "]" cannot sit inside a tag, so no "[" before it can
			// start one any more.
			opens = opens[:0]
		}
		out = append(out, s[i])
	}
	return string(out)
}

// findTag returns the byte span and number of the first valid tag in s.
func findTag(s string, words []string) (start, end int, number int64, ok bool) {
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '[')
		if j < 0 {
			break
		}
		start = i + j
		if end, number, ok = matchTagAt(s, start, words); ok {
			return start, end, number, true
		}
		i = start + 1
	}
	return 0, 0, 0, false
}

// matchTagAt matches "[", the prefix words, "#", the number and "]" at
// s[start:], with any white space between the parts. It returns where the
// tag ends and its number.
func matchTagAt(s string, start int, words []string) (end int, number int64, ok bool) {
	i := skipSpace(s, start+1)
	for k, w := range words {
		if k > 0 {
			j := skipSpace(s, i)
			if j == i {
				return 0, 0, false
			}
			i = j
		}
		if i, ok = matchFold(s, i, w); !ok {
			return 0, 0, false
		}
	}
	i = skipSpace(s, i)
	if i >= len(s) || s[i] != '#' {
		return 0, 0, false
	}
	i = skipSpace(s, i+1)
	digits := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	number, err := strconv.ParseInt(s[digits:i], 10, 64)
	if err != nil || number <= 0 {
		return 0, 0, false
	}
	i = skipSpace(s, i)
	if i >= len(s) || s[i] != ']' {
		return 0, 0, false
	}
	return i + 1, number, true
}

// matchFold reports whether word is at s[i:], ignoring letter case, and
// returns where it ends in s; case folding can change a rune's length.
func matchFold(s string, i int, word string) (int, bool) {
	for _, w := range word {
		r, size := utf8.DecodeRuneInString(s[i:])
		if size == 0 || !foldEqual(r, w) {
			return 0, false
		}
		i += size
	}
	return i, true
}

// foldEqual reports whether two runes are equal under simple Unicode case
// folding.
func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

// skipSpace returns the index of the first rune at or after i in s that is
// not white space.
func skipSpace(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}

// matchListTag returns the length of the bracketed tag at the start of s,
// such as "[users]" or "[EXTERNAL]", or 0 if s does not start with one.
func matchListTag(s string) int {
	if !strings.HasPrefix(s, "[") {
		return 0
	}
	runes, blank := 0, true
	for i, r := range s[1:] {
		switch {
		case r == ']' && !blank:
			return i + 2
		case r == '[' || r == ']':
			return 0
		case runes == maxListTag:
			return 0
		}
		runes++
		blank = blank && unicode.IsSpace(r)
	}
	return 0
}

// matchPrefix returns the length and kind of the reply or forward prefix
// at the start of s ("Re: ", "AW[2]:", "Fwd :"), or 0 if there is none.
// A prefix is a whole word: "Reboot:" and "Relay:" are not "Re:".
func matchPrefix(s string) (int, subjectPrefix) {
	word := wordEnd(s)
	if word > maxPrefixLen {
		return 0, notPrefix
	}
	lower := strings.ToLower(s[:word])
	kind := prefixKind(lower)
	if kind == notPrefix {
		return 0, notPrefix
	}
	if lower == "r" || lower == "i" {
		// Italian "R:" and "I:" are also ordinary letters; only take them
		// with the colon right after and a space (or nothing) after that,
		// so "R : x" and "I:O error" stay.
		end, ok := colonEnd(s, word)
		if !ok || (end < len(s) && skipSpace(s, end) == end) {
			return 0, notPrefix
		}
		return end, kind
	}
	end, ok := colonEnd(s, skipSpace(s, skipCount(s, word)))
	if !ok {
		return 0, notPrefix
	}
	return end, kind
}

// wordEnd returns the length of the run of letters (and combining marks,
// for decomposed accents) at the start of s.
func wordEnd(s string) int {
	for i, r := range s {
		if !unicode.IsLetter(r) && !unicode.Is(unicode.Mn, r) {
			return i
		}
	}
	return len(s)
}

// prefixKind says whether a lower-case word is a reply prefix, a forward
// prefix or neither. Accented prefixes are listed both composed and
// decomposed.
func prefixKind(lower string) subjectPrefix {
	switch lower {
	case "re", "aw", "sv", "vs", "antw", "antwort", "odp", "ynt", "ang",
		"rif", "r", "ref", "res", "réf", "re\u0301f", "rép", "re\u0301p",
		"vá", "va\u0301":
		return replyPrefix
	case "fwd", "fw", "wg", "tr", "rv", "doorst", "wtr", "vl", "enc", "i":
		return forwardPrefix
	}
	return notPrefix
}

// skipCount skips a reply count right after a prefix word at s[i:]:
// "[2]", "(2)" or "^2". It returns i unchanged when there is none.
func skipCount(s string, i int) int {
	if i >= len(s) {
		return i
	}
	closer := byte(0)
	switch s[i] {
	case '[':
		closer = ']'
	case '(':
		closer = ')'
	case '^':
	default:
		return i
	}
	j := i + 1
	for j < len(s) && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	if j == i+1 {
		return i
	}
	if closer == 0 {
		return j
	}
	if j < len(s) && s[j] == closer {
		return j + 1
	}
	return i
}

// colonEnd reports whether s[i:] starts with a colon, ASCII or full-width,
// and returns where it ends.
func colonEnd(s string, i int) (int, bool) {
	switch {
	case strings.HasPrefix(s[i:], ":"):
		return i + 1, true
	case strings.HasPrefix(s[i:], "："):
		return i + len("："), true
	}
	return 0, false
}
