-- window = 2^32: browse computed pos % (uint32_t)W = pos % 0 (SIGFPE).
UPDATE meta SET value = '4294967296' WHERE key = 'window';
INSERT INTO topk VALUES(0, 5, 0.9, 0, 3);
