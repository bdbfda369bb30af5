-- +goose Up
-- add column "derived_key" to table: "blobs" (hand-written: Atlas rebuilt the
-- table, and its reverse could not restore it; SQLite adds a nullable column
-- and drops it in place)
ALTER TABLE `blobs` ADD COLUMN `derived_key` text NULL;
-- create index "blobs_derived_key_key" to table: "blobs"
CREATE UNIQUE INDEX `blobs_derived_key_key` ON `blobs` (`derived_key`);

-- +goose Down
-- reverse: create index "blobs_derived_key_key" to table: "blobs"
DROP INDEX IF EXISTS `blobs_derived_key_key`;
-- reverse: add column "derived_key"
ALTER TABLE `blobs` DROP COLUMN `derived_key`;
