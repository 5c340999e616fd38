-- Counts a final denial that wrote no counter (the plan does not include the meter) in the daily rollup.
-- Params: $1 user, $2 meter, $3 now.
INSERT INTO quota.daily_rollup AS d (user_id, day, meter, denials)
VALUES ($1, ($3 AT TIME ZONE 'UTC')::date, $2, 1)
ON CONFLICT (user_id, day, meter) DO UPDATE SET denials = d.denials + 1
