package jsonlimit

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Scalar renders the value a gjson path led to, as selectors and signed
// fields read it: strings unescaped, numbers as written, booleans as true
// or false. Objects, arrays, null and a missing path are "". Escapes and
// invalid UTF-8 are decoded the way encoding/json does (lone surrogates
// and bad bytes become U+FFFD).
func Scalar(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		if strings.IndexByte(r.Raw, '\\') < 0 && utf8.ValidString(r.Str) {
			return r.Str
		}
		var v string
		if err := json.Unmarshal([]byte(r.Raw), &v); err != nil {
			return r.Str
		}
		return v
	case gjson.Number:
		return r.Raw
	case gjson.True:
		return "true"
	case gjson.False:
		return "false"
	}
	return ""
}
