package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/allot/allot"
	"github.com/allot/allot/wire"
)

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

var (
	errBodyTooLarge = &apiError{
		status: http.StatusRequestEntityTooLarge, code: wire.CodeInvalid,
		detail: "request body is larger than 1 MiB: send a smaller body",
	}
	errBodyEmpty = &allot.InvalidError{Reason: "request body is empty: send a JSON object"}
)

// bufPool holds byte buffers for request and response bodies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // let big buffers go
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// readBody appends the request body to buf, refusing more than maxBody
// bytes and, for a non-empty body, any Content-Type but application/json.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return buf, nil
	}
	if r.ContentLength > maxBody {
		return buf, errBodyTooLarge
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > maxBody {
			return buf, errBodyTooLarge
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, &apiError{status: http.StatusBadRequest, code: wire.CodeInvalid,
				detail: "could not read the request body: " + err.Error()}
		}
	}
	if len(buf) > 0 {
		if err := checkContentType(r); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// checkContentType accepts a missing Content-Type and application/json
// (with any parameters).
func checkContentType(r *http.Request) error {
	h := r.Header["Content-Type"]
	if len(h) == 0 || h[0] == contentTypeJSON {
		return nil
	}
	mt, _, err := mime.ParseMediaType(h[0])
	if err == nil && mt == contentTypeJSON {
		return nil
	}
	return &apiError{
		status: http.StatusUnsupportedMediaType, code: wire.CodeInvalid, field: "Content-Type",
		detail: fmt.Sprintf("Content-Type %q is not supported: send the body as application/json", h[0]),
	}
}

// decodeBody reads the request body and decodes it as exactly one JSON
// object into v, refusing unknown, misspelt, null and repeated fields.
// Every error names what to fix.
func decodeBody(r *http.Request, v any) error {
	bp := getBuf()
	defer putBuf(bp)
	b, err := readBody(r, *bp)
	*bp = b
	if err != nil {
		return err
	}
	return decodeJSON(b, v)
}

// decodeJSON decodes exactly one JSON object from b into v, a pointer to
// the struct of the body's fields. Besides what encoding/json refuses
// (with DisallowUnknownFields), it refuses what the schemas refuse and
// encoding/json would let through: see checkMembers.
func decodeJSON(b []byte, v any) error {
	t := trimSpace(b)
	if len(t) == 0 {
		return errBodyEmpty
	}
	if !utf8.Valid(b) {
		return &allot.InvalidError{Reason: "the body is not valid UTF-8: send JSON text in UTF-8"}
	}
	if err := checkSurrogates(b); err != nil {
		return err
	}
	if string(t) == "null" {
		// encoding/json reads it as {}; other non-objects it refuses.
		return &allot.InvalidError{Reason: "body must be a JSON object, got null: send {} for the defaults"}
	}
	if err := checkMembers(b, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if off := dec.InputOffset(); len(trimSpace(b[off:])) != 0 {
		return &allot.InvalidError{Reason: fmt.Sprintf(
			"unexpected data after the JSON object at byte %d: send exactly one JSON object", off)}
	}
	return nil
}

// checkSurrogates refuses a \u escape of a UTF-16 surrogate that is not
// half of a pair: encoding/json would silently read it as U+FFFD, so two
// different customers or references could become one. Backslashes occur
// only inside JSON strings, so a scan of the raw bytes finds every escape.
func checkSurrogates(b []byte) error {
	hex := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		var r rune
		for _, c := range b[i+2 : i+6] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := hex(i)
		if !ok {
			i++ // another escape: skip the escaped character
			continue
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if lo, ok := hex(i + 6); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				i += 11
				continue
			}
		case r >= 0xDC00 && r <= 0xDFFF:
		default:
			i += 5
			continue
		}
		return &allot.InvalidError{Reason: fmt.Sprintf("the escape %s at byte %d is half of a UTF-16 surrogate pair: send the whole character", b[i:i+6], i)}
	}
	return nil
}

// checkMembers refuses, among the members of the JSON object b, what
// encoding/json would accept although the schemas (additionalProperties
// false, no nullable field) do not:
//
//   - a key not spelled exactly as a field's JSON name (encoding/json
//     matches keys case-insensitively), saying which field it resembles;
//   - a null value, which encoding/json treats as an absent field;
//   - a key given twice, of which encoding/json keeps the last value.
//
// The first such member is reported, by its key as sent. A body that is
// not valid JSON or not an object passes: encoding/json reports those, so
// a syntax error anywhere wins over a member's problem. Only the slow path
// runs this; the fast parsers decline every body it could refuse.
func checkMembers(b []byte, v any) error {
	names, ok := bodyFields(v)
	if !ok {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // a number token can't fail
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var (
		first error
		seen  []string
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		if first == nil {
			first = checkKey(key, names, seen, v)
		}
		seen = append(seen, key)
		tok, err = dec.Token()
		if err != nil {
			return nil
		}
		switch tok {
		case nil:
			if first == nil {
				first = &allot.InvalidError{Field: key, Reason: "must not be null: leave the field out to get the default"}
			}
		case json.Delim('{'), json.Delim('['):
			for depth := 1; depth > 0; {
				tok, err := dec.Token()
				if err != nil {
					return nil
				}
				switch tok {
				case json.Delim('{'), json.Delim('['):
					depth++
				case json.Delim('}'), json.Delim(']'):
					depth--
				}
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil
	}
	return first
}

// checkKey refuses a key that is not exactly one of names, or that is
// among seen.
func checkKey(key string, names, seen []string, v any) error {
	if !slices.Contains(names, key) {
		for _, n := range names {
			if strings.EqualFold(n, key) {
				return &allot.InvalidError{Field: key, Reason: fmt.Sprintf(
					"is not a known field: field names are case-sensitive, did you mean %q?", n)}
			}
		}
		return &allot.InvalidError{Field: key, Reason: fmt.Sprintf("is not a known field: the body accepts %s", fieldList(v))}
	}
	if slices.Contains(seen, key) {
		return &allot.InvalidError{Field: key, Reason: "is given more than once: give each field once"}
	}
	return nil
}

// bodyTypes caches bodyFields by struct type.
var bodyTypes sync.Map // reflect.Type -> []string

// bodyFields returns the JSON field names of the struct v points to; ok
// is false when v is not a pointer to a struct.
func bodyFields(v any) (names []string, ok bool) {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	t = t.Elem()
	if n, ok := bodyTypes.Load(t); ok {
		return n.([]string), true
	}
	names = structFields(t, nil)
	bodyTypes.Store(t, names)
	return names, true
}

// trimSpace removes JSON white space from both ends of b.
func trimSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// jsonError turns an encoding/json error into an *allot.InvalidError that
// names the field (when known) and says what to send instead.
func jsonError(err error, v any) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return errBodyEmpty
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &allot.InvalidError{Reason: "body is not valid JSON: it ends in the middle of a value (check for a missing quote, bracket or brace)"}
	case errors.As(err, &syn):
		return &allot.InvalidError{Reason: fmt.Sprintf("body is not valid JSON at byte %d: %s", syn.Offset, syn.Error())}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &allot.InvalidError{Reason: fmt.Sprintf("body must be a JSON object, got %s", typ.Value)}
		}
		// Bodies are flat; the path names embedded structs by their Go
		// type ("SequencePatchParams.max"), which the caller never sent.
		field := typ.Field[strings.LastIndexByte(typ.Field, '.')+1:]
		return &allot.InvalidError{Field: field, Reason: fmt.Sprintf("must be %s, got %s", describeType(typ.Type), typ.Value)}
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		return &allot.InvalidError{Field: name, Reason: fmt.Sprintf("is not a known field: the body accepts %s", fieldList(v))}
	}
	return &allot.InvalidError{Reason: "body is not valid: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// describeType says in words what JSON value a Go type takes.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[durationText]():
		return `a duration string such as "10m" or "90s"`
	case reflect.TypeFor[timeText]():
		return `an RFC 3339 time string such as "2026-11-27T09:00:00Z"`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number (integer, no fraction or exponent) within 64 bits"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// fieldList lists the JSON field names of the struct v points to,
// including those of embedded structs.
func fieldList(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return "no fields"
	}
	names := structFields(t, nil)
	if len(names) == 0 {
		return "no fields"
	}
	return strings.Join(names, ", ")
}

// structFields appends the JSON field names of struct type t to names.
func structFields(t reflect.Type, names []string) []string {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && f.Type.Kind() == reflect.Struct && name == "" {
			names = structFields(f.Type, names)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !slices.Contains(names, name) { // a field shadowing an embedded one
			names = append(names, name)
		}
	}
	return names
}

// nextBody is wire.NextRequest (the wire contract).
type nextBody = wire.NextRequest

// decodeNext reads the body of a next request into p. An empty body means
// count 1 and today. Common bodies are parsed without reflection; anything
// else goes through decodeJSON, which has the final word.
func decodeNext(r *http.Request, p *allot.NextParams) error {
	return withBody(r, func(b []byte) error { return nextParams(b, p) })
}

// nextParams reads a next body b into p.
func nextParams(b []byte, p *allot.NextParams) error {
	count, hasCount, date, hasDate, ok := parseNextFast(b)
	if !ok {
		var body nextBody
		if err := decodeJSON(b, &body); err != nil {
			return err
		}
		return applyNext(&body, p)
	}
	return setNext(p, count, hasCount, date, hasDate)
}

// applyNext checks the fields of a next body and sets them on p.
func applyNext(body *nextBody, p *allot.NextParams) error {
	var count int64
	var date string
	if body.Count != nil {
		count = *body.Count
	}
	if body.Date != nil {
		date = *body.Date
	}
	if body.Reference != nil {
		if *body.Reference == "" {
			return allot.Invalidf("reference", "is empty: give the document's id, or leave reference out")
		}
		p.Reference = *body.Reference
	}
	d, err := parseDuration("confirm_within", body.ConfirmWithin)
	if err != nil {
		return err
	}
	if d != nil {
		if *d <= 0 {
			return allot.Invalidf("confirm_within", "must be between 1s and %s, got %s", allot.ConfirmWithinMax, time.Duration(*d))
		}
		p.ConfirmWithin = time.Duration(*d)
	}
	return setNext(p, count, body.Count != nil, date, body.Date != nil)
}

// setNext checks count and date and sets those given on p.
func setNext(p *allot.NextParams, count int64, hasCount bool, date string, hasDate bool) error {
	if hasCount {
		if count < 1 || count > allot.CountMax {
			return allot.Invalidf("count", "must be between 1 and %d, got %d", allot.CountMax, count)
		}
		p.Count = count
	}
	if hasDate {
		if date == "" {
			return allot.Invalidf("date", "is empty: give a date as YYYY-MM-DD, or leave date out for today")
		}
		p.Date = date
	}
	return nil
}

// parseNextFast parses the plain shapes of a next body with parseFlat:
// {"count":<int>,"date":"<printable ASCII>"} in any order, either field
// optional. ok=false means "not one of those shapes, ask decodeJSON".
func parseNextFast(b []byte) (count int64, hasCount bool, date string, hasDate bool, ok bool) {
	fields := [2]flatField{{key: "count", kind: flatInt}, {key: "date"}}
	if !parseFlat(b, fields[:]) {
		return 0, false, "", false, false
	}
	return fields[0].n, fields[0].set, fields[1].s, fields[1].set, true
}

// parseInt parses a JSON integer of at most 18 digits at b[i:], which is
// always within int64, and returns the index after it.
func parseInt(b []byte, i int) (int64, int, bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (digits > 1 && b[start] == '0') {
		return 0, i, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, i, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// flatKind is the JSON type of a member parseFlat accepts.
type flatKind uint8

const (
	// flatString is a string of printable ASCII without escapes.
	flatString flatKind = iota
	// flatInt is an integer of at most 18 digits, no fraction or exponent.
	flatInt
)

// flatField is one member parseFlat knows, and what it found.
type flatField struct {
	key  string
	kind flatKind
	set  bool
	n    int64
	s    string
}

// plainString reports whether a string starts at b[i] that holds only
// printable ASCII and no escapes, and where it ends: j is its closing
// quote.
func plainString(b []byte, i int) (j int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	j = i + 1
	for j < len(b) && b[j] >= 0x20 && b[j] < 0x80 && b[j] != '"' && b[j] != '\\' {
		j++
	}
	return j, j < len(b) && b[j] == '"'
}

// parseFlat parses the plain shapes of a small request body without
// reflection: one JSON object whose members are among fields, keys spelled
// exactly, values of the field's kind (never null), each at most once, in
// any order, with JSON white space. ok=false means "not one of those
// shapes, ask decodeJSON" (which also produces the error message, such as
// the one for a repeated member); when ok is true the result equals what
// decodeJSON decodes into the matching struct.
func parseFlat(b []byte, fields []flatField) (ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		j, ok := plainString(b, i)
		if !ok {
			return false
		}
		var f *flatField
		for k := range fields {
			if fields[k].key == string(b[i+1:j]) {
				f = &fields[k]
				break
			}
		}
		if f == nil || f.set {
			return false // an unknown key, or one given twice
		}
		i = skipSpace(b, j+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		switch f.kind {
		case flatInt:
			n, next, good := parseInt(b, i)
			if !good {
				return false
			}
			f.n, f.set, i = n, true, next
		default:
			j, ok := plainString(b, i)
			if !ok {
				return false
			}
			f.s, f.set, i = string(b[i+1:j]), true, j+1
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// decodeOptional decodes the request body into v like decodeBody, except
// that an empty body is no error and leaves v as it is.
func decodeOptional(r *http.Request, v any) error {
	return withBody(r, func(b []byte) error { return decodeJSON(b, v) })
}

// withBody reads the request body into a pooled buffer and calls fn with
// it, unless it is empty or white space alone: then it returns nil. b is
// valid only while fn runs.
func withBody(r *http.Request, fn func(b []byte) error) error {
	bp := getBuf()
	defer putBuf(bp)
	b, err := readBody(r, *bp)
	*bp = b
	if err != nil {
		return err
	}
	if len(trimSpace(b)) == 0 {
		return nil
	}
	return fn(b)
}
