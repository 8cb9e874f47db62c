-- Events reach this database through hookd's write-ahead log (package
-- wal): the indexer records, in the transaction that copies them, the LSN
-- of the last log record it copied, and the next start replays the log
-- from there.
INSERT INTO settings (name, value) VALUES ('log_indexed_lsn', '0')
    ON CONFLICT (name) DO NOTHING;

-- An event's body and headers stay in its log record: the row says where
-- (the segment named by the LSN of its first record, and the byte offset
-- of the record in it), and holds an empty body and no headers. Events
-- stored before the log existed keep theirs in the row (these columns
-- NULL).
ALTER TABLE events ADD COLUMN log_segment INTEGER;
ALTER TABLE events ADD COLUMN log_offset INTEGER;

-- The log segments that hold event bodies, with the range of their
-- events' seqs: a segment is released once no event of its range is left.
CREATE TABLE log_segments (
    segment INTEGER PRIMARY KEY,
    min_seq INTEGER,
    max_seq INTEGER
);
