-- a quantile sample filed under an octave its w does not belong to (w = 0.5
-- is octave 11): merge must refuse the shard, not pick samples from it.
INSERT INTO qsamples VALUES(0, 5, 3, 0.5, 0, 1);
