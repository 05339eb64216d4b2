-- label_totals rebuilt without NOT NULL and holding a NULL value:
-- specialize used to strdup(NULL) (SIGSEGV).
DROP TABLE label_totals;
CREATE TABLE label_totals(field TEXT, value TEXT, n_tokens INTEGER, n_docs INTEGER);
INSERT INTO label_totals VALUES('lang', NULL, 5, 1), ('lang', 'py', 5, 1);
