-- +goose Up
-- create "annotations" table
CREATE TABLE `annotations` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `page_index` integer NOT NULL, `x` real NOT NULL, `y` real NOT NULL, `w` real NOT NULL, `h` real NOT NULL, `kind` text NOT NULL, `text` text NOT NULL DEFAULT (''), `points` real NULL, `version` integer NOT NULL DEFAULT (1), `deleted_at` datetime NULL, `copy_id` text NOT NULL, `author_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `annotations_copies_copy` FOREIGN KEY (`copy_id`) REFERENCES `copies` (`id`) ON DELETE CASCADE, CONSTRAINT `annotations_users_author` FOREIGN KEY (`author_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- create index "annotation_copy_id_page_index" to table: "annotations"
CREATE INDEX `annotation_copy_id_page_index` ON `annotations` (`copy_id`, `page_index`);
-- create "annotation_revisions" table
CREATE TABLE `annotation_revisions` (`id` text NOT NULL, `version` integer NOT NULL, `action` text NOT NULL, `snapshot` json NOT NULL, `at` datetime NOT NULL, `annotation_id` text NOT NULL, `author_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `annotation_revisions_annotations_annotation` FOREIGN KEY (`annotation_id`) REFERENCES `annotations` (`id`) ON DELETE CASCADE, CONSTRAINT `annotation_revisions_users_author` FOREIGN KEY (`author_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- create index "annotationrevision_annotation_id_version" to table: "annotation_revisions"
CREATE UNIQUE INDEX `annotationrevision_annotation_id_version` ON `annotation_revisions` (`annotation_id`, `version`);
-- create "api_tokens" table
CREATE TABLE `api_tokens` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `token_hash` text NOT NULL, `prefix` text NOT NULL, `scopes` json NOT NULL, `expires_at` datetime NULL, `last_used_at` datetime NULL, `revoked_at` datetime NULL, `owner_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `api_tokens_users_owner` FOREIGN KEY (`owner_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- create index "api_tokens_token_hash_key" to table: "api_tokens"
CREATE UNIQUE INDEX `api_tokens_token_hash_key` ON `api_tokens` (`token_hash`);
-- create "audit_logs" table
CREATE TABLE `audit_logs` (`id` text NOT NULL, `action` text NOT NULL, `target` text NOT NULL DEFAULT (''), `ip` text NOT NULL DEFAULT (''), `metadata` json NULL, `at` datetime NOT NULL, `actor_id` text NULL, PRIMARY KEY (`id`), CONSTRAINT `audit_logs_users_actor` FOREIGN KEY (`actor_id`) REFERENCES `users` (`id`) ON DELETE SET NULL);
-- create index "auditlog_at" to table: "audit_logs"
CREATE INDEX `auditlog_at` ON `audit_logs` (`at`);
-- create index "auditlog_actor_id_at" to table: "audit_logs"
CREATE INDEX `auditlog_actor_id_at` ON `audit_logs` (`actor_id`, `at`);
-- create "blobs" table
CREATE TABLE `blobs` (`id` text NOT NULL, `sha256` text NOT NULL, `size` integer NOT NULL, `media_type` text NOT NULL, `pages` integer NOT NULL DEFAULT (0), `created_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- create index "blobs_sha256_key" to table: "blobs"
CREATE UNIQUE INDEX `blobs_sha256_key` ON `blobs` (`sha256`);
-- create "copy_locks" table
CREATE TABLE `copy_locks` (`id` text NOT NULL, `token` text NOT NULL, `acquired_at` datetime NOT NULL, `expires_at` datetime NOT NULL, `owner_id` text NOT NULL, `copy_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `copy_locks_users_owner` FOREIGN KEY (`owner_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION, CONSTRAINT `copy_locks_copies_lock` FOREIGN KEY (`copy_id`) REFERENCES `copies` (`id`) ON DELETE CASCADE);
-- create index "copy_locks_copy_id_key" to table: "copy_locks"
CREATE UNIQUE INDEX `copy_locks_copy_id_key` ON `copy_locks` (`copy_id`);
-- create index "copylock_expires_at" to table: "copy_locks"
CREATE INDEX `copylock_expires_at` ON `copy_locks` (`expires_at`);
-- create "drafts" table
CREATE TABLE `drafts` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `client_id` text NOT NULL, `payload` json NOT NULL, `version` integer NOT NULL DEFAULT (1), `copy_id` text NOT NULL, `owner_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `drafts_copies_copy` FOREIGN KEY (`copy_id`) REFERENCES `copies` (`id`) ON DELETE CASCADE, CONSTRAINT `drafts_users_owner` FOREIGN KEY (`owner_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- create index "draft_copy_id_owner_id" to table: "drafts"
CREATE UNIQUE INDEX `draft_copy_id_owner_id` ON `drafts` (`copy_id`, `owner_id`);
-- create "exams" table
CREATE TABLE `exams` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `date` text NOT NULL, `pages_per_booklet` integer NOT NULL, `require_appreciation` bool NOT NULL DEFAULT (false), `scheme` json NOT NULL, `scheme_frozen_at` datetime NULL, `results_released_at` datetime NULL, `deleted_at` datetime NULL, `deleted_by` text NULL, PRIMARY KEY (`id`));
-- create index "exam_date" to table: "exams"
CREATE INDEX `exam_date` ON `exams` (`date`);
-- create index "exam_deleted_at" to table: "exams"
CREATE INDEX `exam_deleted_at` ON `exams` (`deleted_at`);
-- create "copies" table
CREATE TABLE `copies` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `anonymous_id` text NOT NULL, `status` text NOT NULL DEFAULT ('STAGING'), `page_count` integer NOT NULL, `short_booklet` bool NOT NULL DEFAULT (false), `appreciation` text NOT NULL DEFAULT (''), `graded_at` datetime NULL, `grading_error` text NULL, `finalize_attempts` integer NOT NULL DEFAULT (0), `version` integer NOT NULL DEFAULT (1), `exam_id` text NOT NULL, `student_id` text NULL, `assigned_corrector_id` text NULL, `source_blob_id` text NULL, `final_blob_id` text NULL, PRIMARY KEY (`id`), CONSTRAINT `copies_exams_copies` FOREIGN KEY (`exam_id`) REFERENCES `exams` (`id`) ON DELETE RESTRICT, CONSTRAINT `copies_students_student` FOREIGN KEY (`student_id`) REFERENCES `students` (`id`) ON DELETE SET NULL, CONSTRAINT `copies_users_assigned_corrector` FOREIGN KEY (`assigned_corrector_id`) REFERENCES `users` (`id`) ON DELETE SET NULL, CONSTRAINT `copies_blobs_source_blob` FOREIGN KEY (`source_blob_id`) REFERENCES `blobs` (`id`) ON DELETE SET NULL, CONSTRAINT `copies_blobs_final_blob` FOREIGN KEY (`final_blob_id`) REFERENCES `blobs` (`id`) ON DELETE SET NULL);
-- create index "copies_anonymous_id_key" to table: "copies"
CREATE UNIQUE INDEX `copies_anonymous_id_key` ON `copies` (`anonymous_id`);
-- create index "examcopy_exam_id_status" to table: "copies"
CREATE INDEX `examcopy_exam_id_status` ON `copies` (`exam_id`, `status`);
-- create index "examcopy_assigned_corrector_id_status" to table: "copies"
CREATE INDEX `examcopy_assigned_corrector_id_status` ON `copies` (`assigned_corrector_id`, `status`);
-- create index "examcopy_student_id_exam_id" to table: "copies"
CREATE INDEX `examcopy_student_id_exam_id` ON `copies` (`student_id`, `exam_id`);
-- create "grading_events" table
CREATE TABLE `grading_events` (`id` text NOT NULL, `action` text NOT NULL, `metadata` json NULL, `at` datetime NOT NULL, `copy_id` text NOT NULL, `actor_id` text NULL, PRIMARY KEY (`id`), CONSTRAINT `grading_events_copies_copy` FOREIGN KEY (`copy_id`) REFERENCES `copies` (`id`) ON DELETE RESTRICT, CONSTRAINT `grading_events_users_actor` FOREIGN KEY (`actor_id`) REFERENCES `users` (`id`) ON DELETE SET NULL);
-- create index "gradingevent_copy_id_at" to table: "grading_events"
CREATE INDEX `gradingevent_copy_id_at` ON `grading_events` (`copy_id`, `at`);
-- create "jobs" table
CREATE TABLE `jobs` (`id` text NOT NULL, `kind` text NOT NULL, `state` text NOT NULL DEFAULT ('QUEUED'), `progress_done` integer NOT NULL DEFAULT (0), `progress_total` integer NOT NULL DEFAULT (0), `attempts` integer NOT NULL DEFAULT (0), `error` text NULL, `result` json NULL, `args` json NULL, `active_key` text NULL, `river_job_id` integer NULL, `created_at` datetime NOT NULL, `started_at` datetime NULL, `finished_at` datetime NULL, `updated_at` datetime NOT NULL, `exam_id` text NULL, `copy_id` text NULL, `requested_by_id` text NULL, PRIMARY KEY (`id`), CONSTRAINT `jobs_exams_jobs` FOREIGN KEY (`exam_id`) REFERENCES `exams` (`id`) ON DELETE SET NULL, CONSTRAINT `jobs_copies_copy` FOREIGN KEY (`copy_id`) REFERENCES `copies` (`id`) ON DELETE SET NULL, CONSTRAINT `jobs_users_requested_by` FOREIGN KEY (`requested_by_id`) REFERENCES `users` (`id`) ON DELETE SET NULL);
-- create index "jobs_active_key_key" to table: "jobs"
CREATE UNIQUE INDEX `jobs_active_key_key` ON `jobs` (`active_key`);
-- create index "job_copy_id_kind" to table: "jobs"
CREATE INDEX `job_copy_id_kind` ON `jobs` (`copy_id`, `kind`);
-- create index "job_exam_id_created_at" to table: "jobs"
CREATE INDEX `job_exam_id_created_at` ON `jobs` (`exam_id`, `created_at`);
-- create index "job_state" to table: "jobs"
CREATE INDEX `job_state` ON `jobs` (`state`);
-- create "question_scores" table
CREATE TABLE `question_scores` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `question_id` text NOT NULL, `points` real NOT NULL, `remark` text NOT NULL DEFAULT (''), `copy_id` text NOT NULL, `scored_by_id` text NULL, PRIMARY KEY (`id`), CONSTRAINT `question_scores_copies_copy` FOREIGN KEY (`copy_id`) REFERENCES `copies` (`id`) ON DELETE CASCADE, CONSTRAINT `question_scores_users_scored_by` FOREIGN KEY (`scored_by_id`) REFERENCES `users` (`id`) ON DELETE SET NULL);
-- create index "questionscore_copy_id_question_id" to table: "question_scores"
CREATE UNIQUE INDEX `questionscore_copy_id_question_id` ON `question_scores` (`copy_id`, `question_id`);
-- create "sessions" table
CREATE TABLE `sessions` (`id` text NOT NULL, `token_hash` text NOT NULL, `created_at` datetime NOT NULL, `last_seen_at` datetime NOT NULL, `expires_at` datetime NOT NULL, `absolute_expires_at` datetime NOT NULL, `ip` text NOT NULL DEFAULT (''), `user_agent` text NOT NULL DEFAULT (''), `revoked_at` datetime NULL, `user_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `sessions_users_user` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- create index "sessions_token_hash_key" to table: "sessions"
CREATE UNIQUE INDEX `sessions_token_hash_key` ON `sessions` (`token_hash`);
-- create index "session_user_id" to table: "sessions"
CREATE INDEX `session_user_id` ON `sessions` (`user_id`);
-- create index "session_expires_at" to table: "sessions"
CREATE INDEX `session_expires_at` ON `sessions` (`expires_at`);
-- create "students" table
CREATE TABLE `students` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `last_name` text NOT NULL, `first_name` text NOT NULL, `birth_date` text NOT NULL, `email` text NULL, `class_name` text NOT NULL, `group` text NULL, `user_id` text NULL, PRIMARY KEY (`id`), CONSTRAINT `students_users_student` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE SET NULL);
-- create index "students_user_id_key" to table: "students"
CREATE UNIQUE INDEX `students_user_id_key` ON `students` (`user_id`);
-- create index "student_last_name_first_name_birth_date" to table: "students"
CREATE UNIQUE INDEX `student_last_name_first_name_birth_date` ON `students` (`last_name`, `first_name`, `birth_date`);
-- create "users" table
CREATE TABLE `users` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `email` text NOT NULL, `name` text NOT NULL, `role` text NOT NULL, `password_hash` text NOT NULL, `active` bool NOT NULL DEFAULT (true), `must_change_password` bool NOT NULL DEFAULT (false), PRIMARY KEY (`id`));
-- create index "users_email_key" to table: "users"
CREATE UNIQUE INDEX `users_email_key` ON `users` (`email`);
-- create "exam_correctors" table
CREATE TABLE `exam_correctors` (`exam_id` text NOT NULL, `user_id` text NOT NULL, PRIMARY KEY (`exam_id`, `user_id`), CONSTRAINT `exam_correctors_exam_id` FOREIGN KEY (`exam_id`) REFERENCES `exams` (`id`) ON DELETE CASCADE, CONSTRAINT `exam_correctors_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);

-- +goose Down
-- reverse: create "exam_correctors" table
DROP TABLE `exam_correctors`;
-- reverse: create index "users_email_key" to table: "users"
DROP INDEX IF EXISTS `users_email_key`;
-- reverse: create "sessions" table
DROP TABLE `sessions`;
-- reverse: create index "student_last_name_first_name_birth_date" to table: "students"
DROP INDEX IF EXISTS `student_last_name_first_name_birth_date`;
-- reverse: create index "students_user_id_key" to table: "students"
DROP INDEX IF EXISTS `students_user_id_key`;
-- reverse: create "question_scores" table
DROP TABLE `question_scores`;
-- reverse: create index "session_expires_at" to table: "sessions"
DROP INDEX IF EXISTS `session_expires_at`;
-- reverse: create index "session_user_id" to table: "sessions"
DROP INDEX IF EXISTS `session_user_id`;
-- reverse: create index "sessions_token_hash_key" to table: "sessions"
DROP INDEX IF EXISTS `sessions_token_hash_key`;
-- reverse: create "jobs" table
DROP TABLE `jobs`;
-- reverse: create index "questionscore_copy_id_question_id" to table: "question_scores"
DROP INDEX IF EXISTS `questionscore_copy_id_question_id`;
-- reverse: create "grading_events" table
DROP TABLE `grading_events`;
-- reverse: create index "job_state" to table: "jobs"
DROP INDEX IF EXISTS `job_state`;
-- reverse: create index "job_exam_id_created_at" to table: "jobs"
DROP INDEX IF EXISTS `job_exam_id_created_at`;
-- reverse: create index "job_copy_id_kind" to table: "jobs"
DROP INDEX IF EXISTS `job_copy_id_kind`;
-- reverse: create index "jobs_active_key_key" to table: "jobs"
DROP INDEX IF EXISTS `jobs_active_key_key`;
-- reverse: create "drafts" table
DROP TABLE `drafts`;
-- reverse: create index "gradingevent_copy_id_at" to table: "grading_events"
DROP INDEX IF EXISTS `gradingevent_copy_id_at`;
-- reverse: create "copy_locks" table
DROP TABLE `copy_locks`;
-- reverse: create index "examcopy_student_id_exam_id" to table: "copies"
DROP INDEX IF EXISTS `examcopy_student_id_exam_id`;
-- reverse: create index "examcopy_assigned_corrector_id_status" to table: "copies"
DROP INDEX IF EXISTS `examcopy_assigned_corrector_id_status`;
-- reverse: create index "examcopy_exam_id_status" to table: "copies"
DROP INDEX IF EXISTS `examcopy_exam_id_status`;
-- reverse: create index "copies_anonymous_id_key" to table: "copies"
DROP INDEX IF EXISTS `copies_anonymous_id_key`;
-- reverse: create "audit_logs" table
DROP TABLE `audit_logs`;
-- reverse: create index "exam_deleted_at" to table: "exams"
DROP INDEX IF EXISTS `exam_deleted_at`;
-- reverse: create index "exam_date" to table: "exams"
DROP INDEX IF EXISTS `exam_date`;
-- reverse: create "api_tokens" table
DROP TABLE `api_tokens`;
-- reverse: create index "draft_copy_id_owner_id" to table: "drafts"
DROP INDEX IF EXISTS `draft_copy_id_owner_id`;
-- reverse: create "annotation_revisions" table
DROP TABLE `annotation_revisions`;
-- reverse: create index "copylock_expires_at" to table: "copy_locks"
DROP INDEX IF EXISTS `copylock_expires_at`;
-- reverse: create index "copy_locks_copy_id_key" to table: "copy_locks"
DROP INDEX IF EXISTS `copy_locks_copy_id_key`;
-- reverse: create "annotations" table
DROP TABLE `annotations`;
-- reverse: create index "blobs_sha256_key" to table: "blobs"
DROP INDEX IF EXISTS `blobs_sha256_key`;
-- reverse: create "copies" table
DROP TABLE `copies`;
-- reverse: create index "auditlog_actor_id_at" to table: "audit_logs"
DROP INDEX IF EXISTS `auditlog_actor_id_at`;
-- reverse: create index "auditlog_at" to table: "audit_logs"
DROP INDEX IF EXISTS `auditlog_at`;
-- reverse: create "blobs" table
DROP TABLE `blobs`;
-- reverse: create index "api_tokens_token_hash_key" to table: "api_tokens"
DROP INDEX IF EXISTS `api_tokens_token_hash_key`;
-- reverse: create "students" table
DROP TABLE `students`;
-- reverse: create index "annotationrevision_annotation_id_version" to table: "annotation_revisions"
DROP INDEX IF EXISTS `annotationrevision_annotation_id_version`;
-- reverse: create "users" table
DROP TABLE `users`;
-- reverse: create index "annotation_copy_id_page_index" to table: "annotations"
DROP INDEX IF EXISTS `annotation_copy_id_page_index`;
-- reverse: create "exams" table
DROP TABLE `exams`;
