-- The W3C traceparent of the span of the request that created the event
-- (tracing on, docs/TRACING.md): its delivery attempts, made later and maybe
-- by another replica, are children of that span. NULL when tracing was off.
-- Old processes ignore the column.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
