-- The W3C traceparent of the span of the request that created the event
-- (tracing on, docs/TRACING.md): its delivery attempts, made later, are
-- children of that span. NULL when tracing was off. Like the row's other
-- columns it is copied from the event's log record, which holds it too.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
