-- n_groups = 2e9: specialize sized calloc(n_labels * n_groups) from it.
UPDATE meta SET value = '2000000000' WHERE key = 'n_groups';
