-- no change: a valid finished store (used for the lock and disk-full cases).
SELECT 1;
