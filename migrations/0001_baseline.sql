-- Migration number: 0001 	 2026-12-06T08:00:00.000Z
-- The LMS schema as the audit found it, applied by hand from schema.sql until now.
-- A database that already holds it is recorded with `lmsinfra migrate baseline`.
CREATE TABLE courses (
  id          TEXT PRIMARY KEY,
  slug        TEXT NOT NULL UNIQUE,
  title       TEXT NOT NULL,
  published   INTEGER NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE lessons (
  id          TEXT PRIMARY KEY,
  course_id   TEXT NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  title       TEXT NOT NULL,
  stream_uid  TEXT,
  UNIQUE (course_id, position)
);

CREATE TABLE enrollments (
  id          TEXT PRIMARY KEY,
  course_id   TEXT NOT NULL REFERENCES courses(id),
  email       TEXT NOT NULL,
  enrolled_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE (course_id, email)
);

-- Tally webhook deliveries, kept so a replayed delivery is recognised.
CREATE TABLE tally_submissions (
  submission_id TEXT PRIMARY KEY,
  form_id       TEXT NOT NULL,
  received_at   TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX enrollments_by_email ON enrollments (email);
