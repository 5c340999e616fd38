-- Burst path: creates the GCRA state row; '-infinity' means a full bucket. Params: $1 user, $2 meter.
INSERT INTO quota.bursts (user_id, meter, tat) VALUES ($1, $2, '-infinity')
ON CONFLICT (user_id, meter) DO NOTHING
