-- +goose Up
-- modify "blobs" table
ALTER TABLE "blobs" ADD COLUMN "derived_key" character varying NULL;
-- create index "blobs_derived_key_key" to table: "blobs"
CREATE UNIQUE INDEX "blobs_derived_key_key" ON "blobs" ("derived_key");

-- +goose Down
-- reverse: create index "blobs_derived_key_key" to table: "blobs"
DROP INDEX "blobs_derived_key_key";
-- reverse: modify "blobs" table
ALTER TABLE "blobs" DROP COLUMN "derived_key";
