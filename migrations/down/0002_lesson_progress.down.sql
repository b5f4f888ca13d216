-- Undoes 0002_lesson_progress.sql: the progress table and its index go, with their rows.
DROP INDEX IF EXISTS lesson_progress_by_lesson;
DROP TABLE IF EXISTS lesson_progress;
