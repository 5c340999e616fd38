-- Every client consumes for the one shared team account (scenario 2).
SELECT allowed FROM quota.consume('team', 'ai_requests', 1);
