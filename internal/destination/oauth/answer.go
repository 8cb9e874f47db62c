package oauth

import "hookd/internal/jsonlimit"

// answerDepth refuses a token endpoint's answer nested deeper than
// jsonlimit.DefaultDepth, before it is decoded (its size is capped at
// MaxResponse where it is read).
func answerDepth(body []byte) error {
	return jsonlimit.Check(body, jsonlimit.DefaultDepth)
}
