-- +goose Up
-- create "blobs" table
CREATE TABLE "blobs" ("id" character varying NOT NULL, "sha256" character varying NOT NULL, "size" bigint NOT NULL, "media_type" character varying NOT NULL, "pages" bigint NOT NULL DEFAULT 0, "created_at" timestamptz NOT NULL, PRIMARY KEY ("id"));
-- create index "blobs_sha256_key" to table: "blobs"
CREATE UNIQUE INDEX "blobs_sha256_key" ON "blobs" ("sha256");
-- create "exams" table
CREATE TABLE "exams" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "name" character varying NOT NULL, "date" character varying NOT NULL, "pages_per_booklet" bigint NOT NULL, "require_appreciation" boolean NOT NULL DEFAULT false, "scheme" jsonb NOT NULL, "scheme_frozen_at" timestamptz NULL, "results_released_at" timestamptz NULL, "deleted_at" timestamptz NULL, "deleted_by" character varying NULL, PRIMARY KEY ("id"));
-- create index "exam_date" to table: "exams"
CREATE INDEX "exam_date" ON "exams" ("date");
-- create index "exam_deleted_at" to table: "exams"
CREATE INDEX "exam_deleted_at" ON "exams" ("deleted_at");
-- create "users" table
CREATE TABLE "users" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "email" character varying NOT NULL, "name" character varying NOT NULL, "role" character varying NOT NULL, "password_hash" character varying NOT NULL, "active" boolean NOT NULL DEFAULT true, "must_change_password" boolean NOT NULL DEFAULT false, PRIMARY KEY ("id"));
-- create index "users_email_key" to table: "users"
CREATE UNIQUE INDEX "users_email_key" ON "users" ("email");
-- create "students" table
CREATE TABLE "students" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "last_name" character varying NOT NULL, "first_name" character varying NOT NULL, "birth_date" character varying NOT NULL, "email" character varying NULL, "class_name" character varying NOT NULL, "group" character varying NULL, "user_id" character varying NULL, PRIMARY KEY ("id"), CONSTRAINT "students_users_student" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL);
-- create index "student_last_name_first_name_birth_date" to table: "students"
CREATE UNIQUE INDEX "student_last_name_first_name_birth_date" ON "students" ("last_name", "first_name", "birth_date");
-- create index "students_user_id_key" to table: "students"
CREATE UNIQUE INDEX "students_user_id_key" ON "students" ("user_id");
-- create "copies" table
CREATE TABLE "copies" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "anonymous_id" character varying NOT NULL, "status" character varying NOT NULL DEFAULT 'STAGING', "page_count" bigint NOT NULL, "short_booklet" boolean NOT NULL DEFAULT false, "appreciation" character varying NOT NULL DEFAULT '', "graded_at" timestamptz NULL, "grading_error" character varying NULL, "finalize_attempts" bigint NOT NULL DEFAULT 0, "version" bigint NOT NULL DEFAULT 1, "exam_id" character varying NOT NULL, "student_id" character varying NULL, "assigned_corrector_id" character varying NULL, "source_blob_id" character varying NULL, "final_blob_id" character varying NULL, PRIMARY KEY ("id"), CONSTRAINT "copies_blobs_final_blob" FOREIGN KEY ("final_blob_id") REFERENCES "blobs" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "copies_blobs_source_blob" FOREIGN KEY ("source_blob_id") REFERENCES "blobs" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "copies_exams_copies" FOREIGN KEY ("exam_id") REFERENCES "exams" ("id") ON UPDATE NO ACTION ON DELETE RESTRICT, CONSTRAINT "copies_students_student" FOREIGN KEY ("student_id") REFERENCES "students" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "copies_users_assigned_corrector" FOREIGN KEY ("assigned_corrector_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL);
-- create index "copies_anonymous_id_key" to table: "copies"
CREATE UNIQUE INDEX "copies_anonymous_id_key" ON "copies" ("anonymous_id");
-- create index "examcopy_assigned_corrector_id_status" to table: "copies"
CREATE INDEX "examcopy_assigned_corrector_id_status" ON "copies" ("assigned_corrector_id", "status");
-- create index "examcopy_exam_id_status" to table: "copies"
CREATE INDEX "examcopy_exam_id_status" ON "copies" ("exam_id", "status");
-- create index "examcopy_student_id_exam_id" to table: "copies"
CREATE INDEX "examcopy_student_id_exam_id" ON "copies" ("student_id", "exam_id");
-- create "annotations" table
CREATE TABLE "annotations" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "page_index" bigint NOT NULL, "x" double precision NOT NULL, "y" double precision NOT NULL, "w" double precision NOT NULL, "h" double precision NOT NULL, "kind" character varying NOT NULL, "text" character varying NOT NULL DEFAULT '', "points" double precision NULL, "version" bigint NOT NULL DEFAULT 1, "deleted_at" timestamptz NULL, "copy_id" character varying NOT NULL, "author_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "annotations_copies_copy" FOREIGN KEY ("copy_id") REFERENCES "copies" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "annotations_users_author" FOREIGN KEY ("author_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION);
-- create index "annotation_copy_id_page_index" to table: "annotations"
CREATE INDEX "annotation_copy_id_page_index" ON "annotations" ("copy_id", "page_index");
-- create "annotation_revisions" table
CREATE TABLE "annotation_revisions" ("id" character varying NOT NULL, "version" bigint NOT NULL, "action" character varying NOT NULL, "snapshot" jsonb NOT NULL, "at" timestamptz NOT NULL, "annotation_id" character varying NOT NULL, "author_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "annotation_revisions_annotations_annotation" FOREIGN KEY ("annotation_id") REFERENCES "annotations" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "annotation_revisions_users_author" FOREIGN KEY ("author_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION);
-- create index "annotationrevision_annotation_id_version" to table: "annotation_revisions"
CREATE UNIQUE INDEX "annotationrevision_annotation_id_version" ON "annotation_revisions" ("annotation_id", "version");
-- create "api_tokens" table
CREATE TABLE "api_tokens" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "name" character varying NOT NULL, "token_hash" character varying NOT NULL, "prefix" character varying NOT NULL, "scopes" jsonb NOT NULL, "expires_at" timestamptz NULL, "last_used_at" timestamptz NULL, "revoked_at" timestamptz NULL, "owner_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "api_tokens_users_owner" FOREIGN KEY ("owner_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- create index "api_tokens_token_hash_key" to table: "api_tokens"
CREATE UNIQUE INDEX "api_tokens_token_hash_key" ON "api_tokens" ("token_hash");
-- create "audit_logs" table
CREATE TABLE "audit_logs" ("id" character varying NOT NULL, "action" character varying NOT NULL, "target" character varying NOT NULL DEFAULT '', "ip" character varying NOT NULL DEFAULT '', "metadata" jsonb NULL, "at" timestamptz NOT NULL, "actor_id" character varying NULL, PRIMARY KEY ("id"), CONSTRAINT "audit_logs_users_actor" FOREIGN KEY ("actor_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL);
-- create index "auditlog_actor_id_at" to table: "audit_logs"
CREATE INDEX "auditlog_actor_id_at" ON "audit_logs" ("actor_id", "at");
-- create index "auditlog_at" to table: "audit_logs"
CREATE INDEX "auditlog_at" ON "audit_logs" ("at");
-- create "copy_locks" table
CREATE TABLE "copy_locks" ("id" character varying NOT NULL, "token" character varying NOT NULL, "acquired_at" timestamptz NOT NULL, "expires_at" timestamptz NOT NULL, "owner_id" character varying NOT NULL, "copy_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "copy_locks_copies_lock" FOREIGN KEY ("copy_id") REFERENCES "copies" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "copy_locks_users_owner" FOREIGN KEY ("owner_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION);
-- create index "copy_locks_copy_id_key" to table: "copy_locks"
CREATE UNIQUE INDEX "copy_locks_copy_id_key" ON "copy_locks" ("copy_id");
-- create index "copylock_expires_at" to table: "copy_locks"
CREATE INDEX "copylock_expires_at" ON "copy_locks" ("expires_at");
-- create "drafts" table
CREATE TABLE "drafts" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "client_id" character varying NOT NULL, "payload" jsonb NOT NULL, "version" bigint NOT NULL DEFAULT 1, "copy_id" character varying NOT NULL, "owner_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "drafts_copies_copy" FOREIGN KEY ("copy_id") REFERENCES "copies" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "drafts_users_owner" FOREIGN KEY ("owner_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION);
-- create index "draft_copy_id_owner_id" to table: "drafts"
CREATE UNIQUE INDEX "draft_copy_id_owner_id" ON "drafts" ("copy_id", "owner_id");
-- create "exam_correctors" table
CREATE TABLE "exam_correctors" ("exam_id" character varying NOT NULL, "user_id" character varying NOT NULL, PRIMARY KEY ("exam_id", "user_id"), CONSTRAINT "exam_correctors_exam_id" FOREIGN KEY ("exam_id") REFERENCES "exams" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "exam_correctors_user_id" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- create "grading_events" table
CREATE TABLE "grading_events" ("id" character varying NOT NULL, "action" character varying NOT NULL, "metadata" jsonb NULL, "at" timestamptz NOT NULL, "copy_id" character varying NOT NULL, "actor_id" character varying NULL, PRIMARY KEY ("id"), CONSTRAINT "grading_events_copies_copy" FOREIGN KEY ("copy_id") REFERENCES "copies" ("id") ON UPDATE NO ACTION ON DELETE RESTRICT, CONSTRAINT "grading_events_users_actor" FOREIGN KEY ("actor_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL);
-- create index "gradingevent_copy_id_at" to table: "grading_events"
CREATE INDEX "gradingevent_copy_id_at" ON "grading_events" ("copy_id", "at");
-- create "jobs" table
CREATE TABLE "jobs" ("id" character varying NOT NULL, "kind" character varying NOT NULL, "state" character varying NOT NULL DEFAULT 'QUEUED', "progress_done" bigint NOT NULL DEFAULT 0, "progress_total" bigint NOT NULL DEFAULT 0, "attempts" bigint NOT NULL DEFAULT 0, "error" character varying NULL, "result" jsonb NULL, "args" jsonb NULL, "active_key" character varying NULL, "river_job_id" bigint NULL, "created_at" timestamptz NOT NULL, "started_at" timestamptz NULL, "finished_at" timestamptz NULL, "updated_at" timestamptz NOT NULL, "exam_id" character varying NULL, "copy_id" character varying NULL, "requested_by_id" character varying NULL, PRIMARY KEY ("id"), CONSTRAINT "jobs_copies_copy" FOREIGN KEY ("copy_id") REFERENCES "copies" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "jobs_exams_jobs" FOREIGN KEY ("exam_id") REFERENCES "exams" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "jobs_users_requested_by" FOREIGN KEY ("requested_by_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL);
-- create index "job_copy_id_kind" to table: "jobs"
CREATE INDEX "job_copy_id_kind" ON "jobs" ("copy_id", "kind");
-- create index "job_exam_id_created_at" to table: "jobs"
CREATE INDEX "job_exam_id_created_at" ON "jobs" ("exam_id", "created_at");
-- create index "job_state" to table: "jobs"
CREATE INDEX "job_state" ON "jobs" ("state");
-- create index "jobs_active_key_key" to table: "jobs"
CREATE UNIQUE INDEX "jobs_active_key_key" ON "jobs" ("active_key");
-- create "question_scores" table
CREATE TABLE "question_scores" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "question_id" character varying NOT NULL, "points" double precision NOT NULL, "remark" character varying NOT NULL DEFAULT '', "copy_id" character varying NOT NULL, "scored_by_id" character varying NULL, PRIMARY KEY ("id"), CONSTRAINT "question_scores_copies_copy" FOREIGN KEY ("copy_id") REFERENCES "copies" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "question_scores_users_scored_by" FOREIGN KEY ("scored_by_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL);
-- create index "questionscore_copy_id_question_id" to table: "question_scores"
CREATE UNIQUE INDEX "questionscore_copy_id_question_id" ON "question_scores" ("copy_id", "question_id");
-- create "sessions" table
CREATE TABLE "sessions" ("id" character varying NOT NULL, "token_hash" character varying NOT NULL, "created_at" timestamptz NOT NULL, "last_seen_at" timestamptz NOT NULL, "expires_at" timestamptz NOT NULL, "absolute_expires_at" timestamptz NOT NULL, "ip" character varying NOT NULL DEFAULT '', "user_agent" character varying NOT NULL DEFAULT '', "revoked_at" timestamptz NULL, "user_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "sessions_users_user" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- create index "session_expires_at" to table: "sessions"
CREATE INDEX "session_expires_at" ON "sessions" ("expires_at");
-- create index "session_user_id" to table: "sessions"
CREATE INDEX "session_user_id" ON "sessions" ("user_id");
-- create index "sessions_token_hash_key" to table: "sessions"
CREATE UNIQUE INDEX "sessions_token_hash_key" ON "sessions" ("token_hash");

-- +goose Down
-- reverse: create index "sessions_token_hash_key" to table: "sessions"
DROP INDEX "sessions_token_hash_key";
-- reverse: create index "session_user_id" to table: "sessions"
DROP INDEX "session_user_id";
-- reverse: create index "session_expires_at" to table: "sessions"
DROP INDEX "session_expires_at";
-- reverse: create "sessions" table
DROP TABLE "sessions";
-- reverse: create index "questionscore_copy_id_question_id" to table: "question_scores"
DROP INDEX "questionscore_copy_id_question_id";
-- reverse: create "question_scores" table
DROP TABLE "question_scores";
-- reverse: create index "jobs_active_key_key" to table: "jobs"
DROP INDEX "jobs_active_key_key";
-- reverse: create index "job_state" to table: "jobs"
DROP INDEX "job_state";
-- reverse: create index "job_exam_id_created_at" to table: "jobs"
DROP INDEX "job_exam_id_created_at";
-- reverse: create index "job_copy_id_kind" to table: "jobs"
DROP INDEX "job_copy_id_kind";
-- reverse: create "jobs" table
DROP TABLE "jobs";
-- reverse: create index "gradingevent_copy_id_at" to table: "grading_events"
DROP INDEX "gradingevent_copy_id_at";
-- reverse: create "grading_events" table
DROP TABLE "grading_events";
-- reverse: create "exam_correctors" table
DROP TABLE "exam_correctors";
-- reverse: create index "draft_copy_id_owner_id" to table: "drafts"
DROP INDEX "draft_copy_id_owner_id";
-- reverse: create "drafts" table
DROP TABLE "drafts";
-- reverse: create index "copylock_expires_at" to table: "copy_locks"
DROP INDEX "copylock_expires_at";
-- reverse: create index "copy_locks_copy_id_key" to table: "copy_locks"
DROP INDEX "copy_locks_copy_id_key";
-- reverse: create "copy_locks" table
DROP TABLE "copy_locks";
-- reverse: create index "auditlog_at" to table: "audit_logs"
DROP INDEX "auditlog_at";
-- reverse: create index "auditlog_actor_id_at" to table: "audit_logs"
DROP INDEX "auditlog_actor_id_at";
-- reverse: create "audit_logs" table
DROP TABLE "audit_logs";
-- reverse: create index "api_tokens_token_hash_key" to table: "api_tokens"
DROP INDEX "api_tokens_token_hash_key";
-- reverse: create "api_tokens" table
DROP TABLE "api_tokens";
-- reverse: create index "annotationrevision_annotation_id_version" to table: "annotation_revisions"
DROP INDEX "annotationrevision_annotation_id_version";
-- reverse: create "annotation_revisions" table
DROP TABLE "annotation_revisions";
-- reverse: create index "annotation_copy_id_page_index" to table: "annotations"
DROP INDEX "annotation_copy_id_page_index";
-- reverse: create "annotations" table
DROP TABLE "annotations";
-- reverse: create index "examcopy_student_id_exam_id" to table: "copies"
DROP INDEX "examcopy_student_id_exam_id";
-- reverse: create index "examcopy_exam_id_status" to table: "copies"
DROP INDEX "examcopy_exam_id_status";
-- reverse: create index "examcopy_assigned_corrector_id_status" to table: "copies"
DROP INDEX "examcopy_assigned_corrector_id_status";
-- reverse: create index "copies_anonymous_id_key" to table: "copies"
DROP INDEX "copies_anonymous_id_key";
-- reverse: create "copies" table
DROP TABLE "copies";
-- reverse: create index "students_user_id_key" to table: "students"
DROP INDEX "students_user_id_key";
-- reverse: create index "student_last_name_first_name_birth_date" to table: "students"
DROP INDEX "student_last_name_first_name_birth_date";
-- reverse: create "students" table
DROP TABLE "students";
-- reverse: create index "users_email_key" to table: "users"
DROP INDEX "users_email_key";
-- reverse: create "users" table
DROP TABLE "users";
-- reverse: create index "exam_deleted_at" to table: "exams"
DROP INDEX "exam_deleted_at";
-- reverse: create index "exam_date" to table: "exams"
DROP INDEX "exam_date";
-- reverse: create "exams" table
DROP TABLE "exams";
-- reverse: create index "blobs_sha256_key" to table: "blobs"
DROP INDEX "blobs_sha256_key";
-- reverse: create "blobs" table
DROP TABLE "blobs";
