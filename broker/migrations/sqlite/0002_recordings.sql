-- Index of session recordings: metadata per session and searchable text (FTS5).

CREATE TABLE recorded_sessions (
    id TEXT PRIMARY KEY,
    grant_id BIGINT,
    vendor TEXT NOT NULL,
    asset TEXT NOT NULL,
    zone TEXT,
    protocol TEXT NOT NULL,
    client TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    end_reason TEXT,
    state TEXT NOT NULL,
    verification TEXT NOT NULL,
    findings TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    events BIGINT NOT NULL,
    commands BIGINT NOT NULL,
    denials BIGINT NOT NULL,
    alerts BIGINT NOT NULL,
    output_bytes BIGINT NOT NULL,
    input_bytes BIGINT NOT NULL,
    stored_bytes BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    indexed_at BIGINT NOT NULL
);
CREATE INDEX recorded_sessions_started ON recorded_sessions (started_at);
CREATE INDEX recorded_sessions_vendor ON recorded_sessions (vendor, started_at);
CREATE INDEX recorded_sessions_asset ON recorded_sessions (asset, started_at);

CREATE TABLE session_text (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES recorded_sessions (id) ON DELETE CASCADE,
    offset_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX session_text_session ON session_text (session_id, offset_ms);

CREATE VIRTUAL TABLE session_text_fts USING fts5 (
    body, content = 'session_text', content_rowid = 'id'
);
CREATE TRIGGER session_text_insert AFTER INSERT ON session_text BEGIN
    INSERT INTO session_text_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER session_text_delete AFTER DELETE ON session_text BEGIN
    INSERT INTO session_text_fts (session_text_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
