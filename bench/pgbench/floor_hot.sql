-- Every client updates the one team counter row (scenario 2's floor).
UPDATE bench.counters SET used = used + 1 WHERE user_id = 'team';
