-- moe_experts = 60000 (E*E = 3.6e9 experts per group): merge sized its
-- accumulators (calloc of terabytes) from it.
UPDATE meta SET value = '60000' WHERE key = 'moe_experts';
