-- One autosave at minimum: bump the version of a 2 KB row. One row per client.
UPDATE bench_drafts SET payload = repeat('x', 2048), version = version + 1, updated_at = now() WHERE copy_id = :client_id;
