-- Alerts (the detector's and external sensors'), the sessions they touched, and the
-- detector's learnt models.

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    origin TEXT NOT NULL,
    source TEXT NOT NULL,
    severity BIGINT NOT NULL,
    score BIGINT NOT NULL,
    asset TEXT,
    vendor TEXT,
    zone TEXT,
    title TEXT NOT NULL,
    findings TEXT NOT NULL,
    response TEXT,
    rule TEXT,
    details TEXT NOT NULL,
    evidence TEXT NOT NULL,
    false_positive_by TEXT,
    false_positive_at BIGINT,
    false_positive_note TEXT
);
CREATE INDEX alerts_at ON alerts (at);
CREATE INDEX alerts_asset ON alerts (asset, at);

CREATE TABLE alert_sessions (
    alert_id BIGINT NOT NULL,
    session TEXT NOT NULL,
    PRIMARY KEY (alert_id, session)
);
CREATE INDEX alert_sessions_session ON alert_sessions (session);

CREATE TABLE detector_models (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
