-- a token index row with a negative expert id.
INSERT INTO token_index VALUES(5, 0, -3, 1, 0.5);
