-- +goose Up
-- create index "apitoken_owner_id" to table: "api_tokens"
CREATE INDEX `apitoken_owner_id` ON `api_tokens` (`owner_id`);
-- create index "auditlog_target_action_at" to table: "audit_logs"
CREATE INDEX `auditlog_target_action_at` ON `audit_logs` (`target`, `action`, `at`);

-- +goose Down
-- reverse: create index "auditlog_target_action_at" to table: "audit_logs"
DROP INDEX IF EXISTS `auditlog_target_action_at`;
-- reverse: create index "apitoken_owner_id" to table: "api_tokens"
DROP INDEX IF EXISTS `apitoken_owner_id`;
