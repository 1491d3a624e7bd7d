package postgres

// migrations are applied in order, each once, in its own transaction, while the migrating
// replica holds migrationLock; schema_migrations records which ran. Never edit a released
// migration: append a new one.
//
// The schema mirrors the SQLite store's: routers, services, identities and policies are JSONB
// documents of their api type next to the columns that must be unique or ordered; keys are
// columns because enrolment updates them conditionally. network_ca holds the CA that every
// replica signs with (see ca.go).
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE routers (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        JSONB NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE services (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        JSONB NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE identities (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        JSONB NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE service_policies (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        JSONB NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE keys (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL CHECK (kind IN ('router', 'identity')),
	subject_id  TEXT NOT NULL,
	secret_hash BYTEA NOT NULL,
	ttl_seconds INTEGER NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	revoked     BOOLEAN NOT NULL DEFAULT false,
	used_at     TIMESTAMPTZ,
	created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX keys_subject ON keys (kind, subject_id);
CREATE TABLE network_ca (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	cert_pem   TEXT NOT NULL,
	key_sealed BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
`,
	// 2: the public key a used key enrolled (store.Key.UsedBy), so that a retry of that
	// enrolment after a lost reply is answered instead of refused.
	`ALTER TABLE keys ADD COLUMN used_by BYTEA;`,
	// 3: whether a router key may enrol a router that is already enrolled
	// (store.Key.AllowReenrollment); keys created before it may not.
	`ALTER TABLE keys ADD COLUMN allow_reenrollment BOOLEAN NOT NULL DEFAULT false;`,
}
