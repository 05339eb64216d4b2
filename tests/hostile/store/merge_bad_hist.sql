-- a histogram bin past the last one (32 bins): it sized no array, but must be refused.
INSERT INTO hist VALUES(0, 5, 99, 7);
