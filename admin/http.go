package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/casedesk/casedesk"
)

// errorBody is the one shape of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// statusOf maps an error code to its HTTP status; the one place that does.
func statusOf(code string) int {
	switch code {
	case casedesk.EINVALID:
		return http.StatusBadRequest
	case casedesk.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case casedesk.EFORBIDDEN:
		return http.StatusForbidden
	case casedesk.ENOTFOUND:
		return http.StatusNotFound
	case casedesk.ECONFLICT:
		return http.StatusConflict
	case casedesk.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers with the error's code and client-safe message; only
// internal errors are logged, with their details, which never reach the
// client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := casedesk.ErrorCode(err)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{errorDetail{casedesk.EINVALID,
			fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)}})
		return
	}
	if code == casedesk.EINTERNAL || code == casedesk.EUNAVAILABLE {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == casedesk.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="casedesk"`)
	}
	writeJSON(w, statusOf(code), errorBody{errorDetail{code, casedesk.ErrorMessage(err)}})
}

// decode reads a JSON object body into v: unknown fields, wrong types,
// trailing data and bodies over the server's limit are EINVALID errors
// naming the field.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return casedesk.Errorf(casedesk.EINVALID, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return casedesk.Errorf(casedesk.EINVALID, "invalid JSON: data after the object")
	}
	scrubNUL(reflect.ValueOf(v))
	return nil
}

// scrubNUL replaces NUL characters in every string of a decoded request
// with U+FFFD, as the store does with what it keeps: PostgreSQL text and
// jsonb (the audit log, outbox payloads) cannot hold NUL, and a request
// must not fail on one with a database error that names no field.
func scrubNUL(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			scrubNUL(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				scrubNUL(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // raw JSON and bytes are the store's to check
		}
		for i := range v.Len() {
			scrubNUL(v.Index(i))
		}
	case reflect.String:
		if v.CanSet() && strings.ContainsRune(v.String(), 0) {
			v.SetString(strings.ReplaceAll(v.String(), "\x00", "\uFFFD"))
		}
	}
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.Is(err, io.EOF):
		return casedesk.Errorf(casedesk.EINVALID, "request body is empty; a JSON object is expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return casedesk.Errorf(casedesk.EINVALID, "invalid JSON: unexpected end of the body")
	case errors.As(err, &syntax):
		return casedesk.Errorf(casedesk.EINVALID, "invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return casedesk.Errorf(casedesk.EINVALID, "the body must be a JSON object, not %s", typ.Value)
		}
		return casedesk.Errorf(casedesk.EINVALID, "field %q must be %s, not %s", typ.Field, jsonType(typ.Type.String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return casedesk.Errorf(casedesk.EINVALID, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return casedesk.Errorf(casedesk.EINVALID, "invalid JSON: %v", err)
}

// jsonType names a Go type the way a JSON client thinks of it.
func jsonType(goType string) string {
	goType = strings.TrimPrefix(goType, "*")
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string", strings.HasSuffix(goType, ".Status"), strings.HasSuffix(goType, ".Priority"):
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// checkLen refuses a value longer than max characters, naming the field.
func checkLen(field, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return casedesk.Errorf(casedesk.EINVALID, "field %q is %d characters long; at most %d are allowed", field, n, max)
	}
	if !utf8.ValidString(v) {
		return casedesk.Errorf(casedesk.EINVALID, "field %q is not valid UTF-8", field)
	}
	return nil
}

// required refuses an empty value, naming the field.
func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return casedesk.Errorf(casedesk.EINVALID, "field %q is required", field)
	}
	return nil
}

// pathInt reads an integer path parameter; a bad one is ENOTFOUND, as the
// object it names cannot exist.
func pathInt(r *http.Request, name string) (int64, error) {
	v, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || v <= 0 {
		return 0, casedesk.Errorf(casedesk.ENOTFOUND, "%s %q not found", name, r.PathValue(name))
	}
	return v, nil
}

// queryInt reads an optional integer query parameter.
func queryInt(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, casedesk.Errorf(casedesk.EINVALID, "query parameter %q must be a non-negative integer", name)
	}
	return v, nil
}

// queryTime reads an optional RFC 3339 time query parameter into dst.
func queryTime(r *http.Request, name string, dst *time.Time) error {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return casedesk.Errorf(casedesk.EINVALID, "query parameter %q must be an RFC 3339 time", name)
	}
	*dst = t
	return nil
}

// limitOf reads the page size: default casedesk.DefaultPageSize, at most
// casedesk.MaxPageSize.
func limitOf(r *http.Request) (int, error) {
	n, err := queryInt(r, "limit")
	if err != nil {
		return 0, err
	}
	if n > casedesk.MaxPageSize {
		return 0, casedesk.Errorf(casedesk.EINVALID, "query parameter \"limit\" is at most %d", casedesk.MaxPageSize)
	}
	if n == 0 {
		return casedesk.DefaultPageSize, nil
	}
	return int(n), nil
}
