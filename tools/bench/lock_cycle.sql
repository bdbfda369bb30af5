-- The SQL a lock cycle needs at minimum: take a free lease, end it. One row per client.
UPDATE bench_locks SET owner_id = 'u', token = md5(random()::text), expires_at = now() + interval '5 minutes'
  WHERE copy_id = :client_id AND (expires_at < now() OR owner_id = 'u');
UPDATE bench_locks SET expires_at = now() - interval '1 second' WHERE copy_id = :client_id AND owner_id = 'u';
