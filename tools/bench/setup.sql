DROP TABLE IF EXISTS bench_locks, bench_drafts;
CREATE TABLE bench_locks (copy_id int PRIMARY KEY, owner_id text, token text, expires_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_drafts (copy_id int PRIMARY KEY, payload text, version int NOT NULL DEFAULT 1, updated_at timestamptz);
INSERT INTO bench_locks (copy_id) SELECT g FROM generate_series(0, 63) g;
INSERT INTO bench_drafts (copy_id, payload) SELECT g, repeat('x', 2048) FROM generate_series(0, 63) g;
