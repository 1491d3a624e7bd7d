package sqlite

// migrations are applied in order, each once, in its own transaction; schema_migrations
// records which ran. Never edit a released migration: append a new one.
//
// Routers, services, identities and policies are stored as JSON documents of their api type
// next to the columns that must be unique or indexed; a PostgreSQL backend uses JSONB the
// same way. Keys are columns because enrolment updates them conditionally.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE routers (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE services (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE identities (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE service_policies (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	doc        TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE keys (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL CHECK (kind IN ('router', 'identity')),
	subject_id  TEXT NOT NULL,
	secret_hash BLOB NOT NULL,
	ttl_seconds INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	revoked     INTEGER NOT NULL DEFAULT 0,
	used_at     INTEGER,
	created_at  INTEGER NOT NULL
);
CREATE INDEX keys_subject ON keys (kind, subject_id);
`,
	// 2: the public key a used key enrolled (store.Key.UsedBy), so that a retry of that
	// enrolment after a lost reply is answered instead of refused.
	`ALTER TABLE keys ADD COLUMN used_by BLOB;`,
	// 3: whether a router key may enrol a router that is already enrolled
	// (store.Key.AllowReenrollment); keys created before it may not.
	`ALTER TABLE keys ADD COLUMN allow_reenrollment INTEGER NOT NULL DEFAULT 0;`,
}
