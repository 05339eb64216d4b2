-- window = 0: merge's GC used it as a window length.
UPDATE meta SET value = '0' WHERE key = 'window';
