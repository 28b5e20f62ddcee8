"""Part 7, chapters/07_lab/arena.md: the task arena (live: a small MQAR arena; the rest read from cpu_arena.json)."""
CPU = dict(live_entrants=["s4d", "softmax", "jamba-like"], live_d_models=[16, 32], live_steps=80, live_batch=32,
           live_train=1000, live_test=128, live_pairs=4, live_keys=16, state_lengths=[16, 64, 256],
           check_length=9)
GPU = dict(live_entrants=["s4d", "mamba", "softmax", "jamba-like"], live_d_models=[16, 32, 64], live_steps=300,
           live_train=4000, live_batch=64, live_test=512, live_pairs=6, live_keys=24, state_lengths=[16, 64, 256],
           check_length=9)
SMOKE = dict(live_steps=2, live_train=64, live_test=16, live_batch=8, state_lengths=[8, 16, 32])
