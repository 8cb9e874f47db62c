package postgres

// horizonSQL: replaced by events.go's on merge.
const horizonSQL = `(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)`
