-- n_groups not a number at all.
UPDATE meta SET value = '12abc' WHERE key = 'n_groups';
