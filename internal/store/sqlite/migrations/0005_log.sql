-- Events reach this database through hookd's write-ahead log: the indexer
-- records, in the transaction that copies them, the LSN of the last log
-- record it copied, and the next start replays the log from there.
INSERT INTO settings (name, value) VALUES ('log_indexed_lsn', '0')
    ON CONFLICT (name) DO NOTHING;
