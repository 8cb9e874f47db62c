package config

import (
	"fmt"
	"time"

	"hookd"
)

// Alerts configures hookd's operational events: events of the built-in
// source "hookd" about hookd itself (docs/ALERTS.md).
type Alerts struct {
	// Enabled emits them. Default true: with no subscription to the hookd
	// source an alert costs one stored event and no delivery.
	Enabled *bool `yaml:"enabled"`
	// FailedQueueThreshold raises failed_queue.threshold when a
	// destination's failed queue holds this many deliveries or more (once
	// when it crosses, again only after it fell below); 0 turns the check
	// off. Default 100.
	FailedQueueThreshold *int64 `yaml:"failed_queue_threshold"`
	// CheckInterval is the time between two checks of the failed queues
	// (made by the leader when several replicas share PostgreSQL).
	// Default 1m, at least 10ms.
	CheckInterval Duration `yaml:"check_interval"`
	// MaxQueued bounds the alerts that wait in memory for the store (while
	// it refuses writes); beyond it new ones are dropped and logged.
	// Default 1000.
	MaxQueued int `yaml:"max_queued"`
}

// Defaults of the alerts.
const (
	DefaultFailedQueueThreshold = 100
	DefaultAlertCheckInterval   = time.Minute
	DefaultAlertMaxQueued       = 1000
)

// On reports whether alerts are emitted.
func (a Alerts) On() bool { return a.Enabled == nil || *a.Enabled }

// Threshold is failed_queue_threshold with its default.
func (a Alerts) Threshold() int64 {
	if a.FailedQueueThreshold == nil {
		return DefaultFailedQueueThreshold
	}
	return *a.FailedQueueThreshold
}

// AlertDedupeWindow is the hookd source's dedupe window: the default window,
// shortened to retention.events (a shorter retention would store an
// alert raised again after its first event was deleted).
func (c *Config) AlertDedupeWindow() time.Duration {
	w := DefaultDedupeWindow
	if r := c.Retention.Events; r != nil && r.D() > 0 && r.D() < w {
		w = r.D()
	}
	return w
}

func (a *Alerts) applyDefaults() {
	if a.CheckInterval == 0 {
		a.CheckInterval = Duration(DefaultAlertCheckInterval)
	}
	if a.MaxQueued == 0 {
		a.MaxQueued = DefaultAlertMaxQueued
	}
}

// validateAlerts checks alerts and that no source takes the reserved name.
func (c *Config) validateAlerts(bad func(field, format string, args ...any)) {
	if t := c.Alerts.FailedQueueThreshold; t != nil && *t < 0 {
		bad("alerts.failed_queue_threshold", "must not be negative (0 turns the check off)")
	}
	if c.Alerts.CheckInterval.D() < 10*time.Millisecond {
		bad("alerts.check_interval", "must be at least 10ms, got %s", c.Alerts.CheckInterval.D())
	}
	if c.Alerts.MaxQueued < 1 {
		bad("alerts.max_queued", "must be at least 1")
	}
	for i, src := range c.Sources {
		if src.Name == hookd.AlertSource {
			bad(fmt.Sprintf("sources[%d] (%s).name", i, src.Name), "%q is reserved: it is the built-in source of hookd's own operational events (docs/ALERTS.md); choose another name", src.Name)
		}
	}
}
