package hookd

import "time"

// AlertSource is the built-in source of hookd's own operational events
// (docs/ALERTS.md). The name is reserved: no configured or API-created
// source may take it, and POST /in/hookd answers 404.
const AlertSource = "hookd"

// Types of the events of the AlertSource.
const (
	// AlertDestinationDisabled: a destination was disabled, by hookd (an
	// HTTP 410, failing for delivery.disable_after) or by an operator.
	AlertDestinationDisabled = "destination.disabled"
	// AlertDestinationEnabled: a disabled destination was enabled again.
	AlertDestinationEnabled = "destination.enabled"
	// AlertDeliveryFailed: a delivery went to the failed queue.
	AlertDeliveryFailed = "delivery.failed"
	// AlertFailedQueueThreshold: a destination's failed queue reached
	// alerts.failed_queue_threshold.
	AlertFailedQueueThreshold = "failed_queue.threshold"
	// AlertStorageRefusing: the store refused writes for a while (full
	// disk, failed fsync, database unreachable); emitted once it takes
	// them again.
	AlertStorageRefusing = "storage.refusing"
)

// Who disabled or enabled a destination (Alert.By).
const (
	ByHookd    = "hookd"
	ByOperator = "operator"
)

// Alert is one operational event before it is stored: its type, the key
// that makes it unique, and the details that become the "data" object of
// its JSON body. Fields that do not apply to a type are left zero and
// left out of the body.
type Alert struct {
	// Type is one of the Alert… types.
	Type string `json:"-"`
	// Key identifies the occurrence: it is the event's external id, so an
	// alert raised twice with one key (by two replicas, or again after a
	// crash) is stored once, within the source's dedupe window.
	Key string `json:"-"`
	// Time is when it happened; zero is when it is emitted.
	Time time.Time `json:"-"`

	Destination string `json:"destination,omitempty"`
	// By is ByHookd or ByOperator (destination.disabled and .enabled).
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
	// DeliveryID and the Event… fields name the delivery the alert is
	// about (delivery.failed), or the one whose outcome disabled the
	// destination.
	DeliveryID  string `json:"delivery_id,omitempty"`
	EventID     string `json:"event_id,omitempty"`
	EventSource string `json:"event_source,omitempty"`
	EventType   string `json:"event_type,omitempty"`
	Attempts    int    `json:"attempts,omitempty"`
	StatusCode  int    `json:"status_code,omitempty"`
	Error       string `json:"error,omitempty"`
	// Failed and Threshold are the failed queue's length and the
	// configured threshold (failed_queue.threshold).
	Failed    int64 `json:"failed,omitempty"`
	Threshold int64 `json:"threshold,omitempty"`
	// Since, Until and Refused describe a time the store refused writes
	// (storage.refusing): its first and last refusal, and how many commits
	// it refused meanwhile.
	Since   *time.Time `json:"since,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
	Refused int64      `json:"refused,omitempty"`
	// Replica is the replica that raised the alert (several replicas on
	// PostgreSQL); empty with a single process.
	Replica string `json:"replica,omitempty"`
}
