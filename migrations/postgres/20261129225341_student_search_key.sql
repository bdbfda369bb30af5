-- +goose Up
-- modify "students" table
ALTER TABLE "students" ADD COLUMN "search_key" character varying NOT NULL DEFAULT '';
UPDATE "students" SET "search_key" = lower("last_name" || ' ' || "first_name");

-- +goose Down
-- reverse: modify "students" table
ALTER TABLE "students" DROP COLUMN "search_key";
