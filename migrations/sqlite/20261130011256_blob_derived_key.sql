-- +goose Up
-- disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- create "new_blobs" table
CREATE TABLE `new_blobs` (`id` text NOT NULL, `sha256` text NOT NULL, `size` integer NOT NULL, `media_type` text NOT NULL, `pages` integer NOT NULL DEFAULT (0), `created_at` datetime NOT NULL, `derived_key` text NULL, PRIMARY KEY (`id`));
-- copy rows from old table "blobs" to new temporary table "new_blobs"
INSERT INTO `new_blobs` (`id`, `sha256`, `size`, `media_type`, `pages`, `created_at`) SELECT `id`, `sha256`, `size`, `media_type`, `pages`, `created_at` FROM `blobs`;
-- drop "blobs" table after copying rows
DROP TABLE `blobs`;
-- rename temporary table "new_blobs" to "blobs"
ALTER TABLE `new_blobs` RENAME TO `blobs`;
-- create index "blobs_sha256_key" to table: "blobs"
CREATE UNIQUE INDEX `blobs_sha256_key` ON `blobs` (`sha256`);
-- create index "blobs_derived_key_key" to table: "blobs"
CREATE UNIQUE INDEX `blobs_derived_key_key` ON `blobs` (`derived_key`);
-- enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;

-- +goose Down
-- reverse: create index "blobs_derived_key_key" to table: "blobs"
DROP INDEX IF EXISTS `blobs_derived_key_key`;
-- reverse: create index "blobs_sha256_key" to table: "blobs"
DROP INDEX IF EXISTS `blobs_sha256_key`;
-- reverse: create "new_blobs" table
DROP TABLE `new_blobs`;
