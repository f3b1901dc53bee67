-- otgate control plane (SQLite). Times are Unix milliseconds; JSON documents are TEXT.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    display_name TEXT,
    org TEXT,
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    totp_secret BLOB,
    totp_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE ssh_keys (
    fingerprint TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ssh_keys_user ON ssh_keys(user_name);

CREATE TABLE api_tokens (
    token_hash BLOB PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens(user_name);

CREATE TABLE zones (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE assets (
    name TEXT PRIMARY KEY,
    zone TEXT NOT NULL REFERENCES zones(name),
    level TEXT NOT NULL,
    definition TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    requester TEXT NOT NULL REFERENCES users(name),
    asset TEXT NOT NULL REFERENCES assets(name),
    zone TEXT NOT NULL,
    level TEXT NOT NULL,
    protocols TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_name TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    ticket TEXT,
    status TEXT NOT NULL,
    approvals_needed BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    decided_by TEXT,
    decision_reason TEXT,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX requests_status ON requests(status, end_at);
CREATE INDEX requests_requester ON requests(requester);

CREATE TABLE approvals (
    request_id BIGINT NOT NULL REFERENCES requests(id),
    approver TEXT NOT NULL REFERENCES users(name),
    at BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);

CREATE TABLE quarantines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    until_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX quarantines_open ON quarantines(subject_kind, subject, ended_at);

CREATE TABLE vault (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT,
    zone TEXT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE casbin_rule (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ptype TEXT NOT NULL,
    v0 TEXT NOT NULL DEFAULT '',
    v1 TEXT NOT NULL DEFAULT '',
    v2 TEXT NOT NULL DEFAULT '',
    v3 TEXT NOT NULL DEFAULT '',
    v4 TEXT NOT NULL DEFAULT '',
    v5 TEXT NOT NULL DEFAULT '',
    UNIQUE (ptype, v0, v1, v2, v3, v4, v5)
);
