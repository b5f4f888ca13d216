-- Migration number: 0002 	 2026-12-06T08:05:00.000Z
-- Where each learner stopped in a lesson, so the viewer can resume playback.
CREATE TABLE lesson_progress (
  enrollment_id TEXT NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,
  lesson_id     TEXT NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
  seconds       INTEGER NOT NULL DEFAULT 0 CHECK (seconds >= 0),
  completed_at  TEXT,
  updated_at    TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (enrollment_id, lesson_id)
);

CREATE INDEX lesson_progress_by_lesson ON lesson_progress (lesson_id);
