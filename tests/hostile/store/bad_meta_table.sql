-- meta without a value column: validation failed reading schema_version and
-- formatted err->msg into itself (snprintf with overlapping buffers).
DROP TABLE meta;
CREATE TABLE meta(k TEXT, v TEXT);
