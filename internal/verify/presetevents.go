package verify

import "hookd/internal/config"

// presetEvents are the event selectors of the presets: where each
// provider's requests carry its event id, type and timestamp.
var presetEvents = map[string]config.EventRules{}

// RegisterPreset registers a provider's preset: its verifier, and the
// selectors of the event id, type and timestamp its requests carry, which
// a source using it gets for every selector it leaves empty.
func RegisterPreset(typ string, f Factory, ev config.EventRules) {
	Register(typ, f)
	presetEvents[typ] = ev
}

// PresetEvent fills the selectors of ev that are empty from the first
// preset among vs that has selectors of its own, and returns the result.
func PresetEvent(vs []config.Verify, ev config.EventRules) config.EventRules {
	for _, v := range vs {
		p, ok := presetEvents[v.Type]
		if !ok {
			continue
		}
		if ev.ID == "" {
			ev.ID = p.ID
		}
		if ev.Type == "" {
			ev.Type = p.Type
		}
		if ev.Timestamp == "" {
			ev.Timestamp = p.Timestamp
		}
		if ev.Key == "" {
			ev.Key = p.Key
		}
		return ev
	}
	return ev
}

// presetEmptyAnswer are the presets whose providers require a success
// answer with no body (Xero: "There is no body in the response").
var presetEmptyAnswer = map[string]bool{}

// PresetAnswersEmpty reports whether a preset among vs requires its
// source's success answer to have no body.
func PresetAnswersEmpty(vs []config.Verify) bool {
	for _, v := range vs {
		if presetEmptyAnswer[v.Type] {
			return true
		}
	}
	return false
}
