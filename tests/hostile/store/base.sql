-- tests/hostile/store/base.sql — a small valid, finished store (2 router groups,
-- E = 4, label field "lang"). replay.py creates the schema from
-- core/store/store.c, runs this, adds tokenizer.model, then a case's .sql.
INSERT INTO meta VALUES('schema_version', '2'), ('model_hash', 'hostile'), ('corpus', 'hostile.jsonl'),
  ('text_field', ''), ('label_fields', 'lang'), ('score_fields', ''), ('top_k', '4'), ('window', '32'),
  ('max_tokens', '0'), ('shard', '0/1'), ('n_groups', '2'), ('moe_experts', '4'), ('moe_groups', '1'),
  ('n_layers', '2'), ('batch', '64');
INSERT INTO progress VALUES('next_doc', 2), ('documents', 2), ('tokens', 10), ('windows', 0), ('batches', 1),
  ('skipped_lines', 0), ('finished', 1);
INSERT INTO groups VALUES(0, 10, 2), (1, 10, 1);
INSERT INTO expert_stats VALUES(0, 5, 6, 3.0, 2.0, 0.9), (0, 6, 4, 1.0, 0.5, 0.4), (1, 1, 10, 5.0, 3.0, 0.8);
INSERT INTO label_totals VALUES('lang', 'c', 5, 1), ('lang', 'py', 5, 1);
INSERT INTO label_stats VALUES(0, 5, 'lang', 'py', 5, 2.8), (0, 5, 'lang', 'c', 1, 0.2),
  (0, 6, 'lang', 'c', 4, 1.0), (1, 1, 'lang', 'py', 5, 2.5), (1, 1, 'lang', 'c', 5, 2.5);
