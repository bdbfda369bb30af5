-- +goose Up
-- add "search_key" to "students" (folded "last first" for suggestStudents; the
-- application keeps it accent-free, existing rows get a lower-case backfill)
ALTER TABLE `students` ADD COLUMN `search_key` text NOT NULL DEFAULT ('');
UPDATE `students` SET `search_key` = lower(`last_name` || ' ' || `first_name`);

-- +goose Down
ALTER TABLE `students` DROP COLUMN `search_key`;
