package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/allot/allot"
)

// Header values shared by every response; net/http never modifies them.
var (
	hdrJSON = []string{contentTypeJSON}
	hdrText = []string{contentTypeText}
	hdrTrue = []string{"true"}
)

// answer writes err as a problem, or else v as JSON with status.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error) outcome {
	if err != nil {
		return s.problem(w, r, err)
	}
	return s.writeJSON(w, r, status, v)
}

// writeJSON writes v as JSON with status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) outcome {
	body, err := json.Marshal(v)
	if err != nil {
		return s.problem(w, r, err)
	}
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return outcome{status: status}
}

// writeBytes writes a ready body with status and content type.
func writeBytes(w http.ResponseWriter, status int, contentType []string, body []byte) outcome {
	w.Header()["Content-Type"] = contentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return outcome{status: status}
}

// statusClientClosed is recorded (never sent) for a request whose caller
// left before its answer could be written (nginx's 499).
const statusClientClosed = 499

// codeUndelivered is recorded for an answer that could not be delivered.
const codeUndelivered = "undelivered"

// deliverBytes writes a ready body and pushes it to the connection, so a
// connection that broke is known now rather than after the handler
// returns. With Content-Length set the flush costs no extra write.
func deliverBytes(w http.ResponseWriter, status int, contentType []string, body []byte) (outcome, error) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		return outcome{status: status}, err
	}
	return outcome{status: status}, http.NewResponseController(w).Flush()
}

// appendNextJSON appends res as the JSON object encoding/json would
// produce for allot.NextResult, without reflection.
func appendNextJSON(b []byte, res *allot.NextResult) []byte {
	b = append(b, `{"sequence":`...)
	b = appendJSONString(b, res.Sequence)
	b = append(b, `,"first":`...)
	b = strconv.AppendInt(b, res.First, 10)
	b = append(b, `,"last":`...)
	b = strconv.AppendInt(b, res.Last, 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, res.Count, 10)
	b = append(b, `,"period":`...)
	b = appendJSONString(b, res.Period)
	b = append(b, `,"ids":[`...)
	for i, id := range res.IDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	b = append(b, `],"status":`...)
	b = appendJSONString(b, string(res.Status))
	if res.ConfirmBy != nil {
		b = append(b, `,"confirm_by":`...)
		b, _ = appendJSONTime(b, *res.ConfirmBy, true)
	}
	if res.Reference != "" {
		b = append(b, `,"reference":`...)
		b = appendJSONString(b, res.Reference)
	}
	b = append(b, `,"remaining":`...)
	b = strconv.AppendInt(b, res.Remaining, 10)
	if res.Warning {
		b = append(b, `,"warning":true}`...)
	} else {
		b = append(b, `,"warning":false}`...)
	}
	return append(b, '\n')
}

// appendNextText appends one ID per line, each followed by "\n".
func appendNextText(b []byte, res *allot.NextResult) []byte {
	for _, id := range res.IDs {
		b = append(b, id...)
		b = append(b, '\n')
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. It escapes '"', '\\' and
// control characters, writes U+2028 and U+2029 as escapes (so the output
// is also valid JavaScript), and replaces invalid UTF-8 with U+FFFD, as
// encoding/json does. Anything else is copied as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendClaimJSON appends c as the JSON object encoding/json would produce
// for allot.Claim, without reflection. ok is false for a time encoding/json
// would refuse (a year outside 0..9999, an offset of a day or more): the
// caller then falls back to encoding/json.
func appendClaimJSON(b []byte, c *allot.Claim) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, c.ID)
	b = append(b, `,"pool":`...)
	b = appendJSONString(b, c.Pool)
	b = append(b, `,"customer":`...)
	b = appendJSONString(b, c.Customer)
	b = append(b, `,"quantity":`...)
	b = strconv.AppendInt(b, c.Quantity, 10)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(c.Status))
	if c.Reference != "" {
		b = append(b, `,"reference":`...)
		b = appendJSONString(b, c.Reference)
	}
	if c.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, c.Reason)
	}
	ok = true
	b = append(b, `,"created_at":`...)
	b, ok = appendJSONTime(b, c.CreatedAt, ok)
	b = append(b, `,"expires_at":`...)
	b, ok = appendJSONTime(b, c.ExpiresAt, ok)
	b = append(b, `,"updated_at":`...)
	b, ok = appendJSONTime(b, c.UpdatedAt, ok)
	return append(b, "}\n"...), ok
}

// appendJSONTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// the sub-second digits it needs). ok stays true only if it was and t is
// within what MarshalJSON accepts.
func appendJSONTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), ok
}
