"""Part 3, chapters/03_kernel: feature maps, Performer statistics, live timings, the MQAR toy, LoLA's probe."""
CPU = dict(map_length=48, head_dim=16, state_length=16, state_dim=8, favor_draws=1000,
           favor_length=64, favor_features=[4, 8, 16, 32, 64, 128, 256], favor_seeds=6, favor_average_draws=2000,
           live_lengths=[512, 1024, 2048, 4096], live_gen_lengths=[256, 1024, 4096], live_repeats=3,
           mqar_pairs=6, mqar_keys=24, mqar_train=4000, mqar_test=256, mqar_steps=300, mqar_d_model=64,
           mqar_heads=2, mqar_batch=64, mqar_lr=3e-3, mqar_features=32,
           lola_length=24, lola_window=4, lola_sparse=4, lola_pairs=16, lola_cache=[0, 2, 4, 8, 12, 16],
           lola_seeds=4)
GPU = dict(map_length=64, head_dim=16, state_length=24, state_dim=8, favor_draws=4000,
           favor_length=64, favor_features=[4, 8, 16, 32, 64, 128, 256, 512], favor_seeds=16, favor_average_draws=8000,
           live_lengths=[1024, 4096, 16384, 65536], live_gen_lengths=[1024, 8192, 32768], live_repeats=10,
           mqar_pairs=16, mqar_keys=64, mqar_train=20000, mqar_test=1024, mqar_steps=1500, mqar_d_model=64,
           mqar_heads=2, mqar_batch=128, mqar_lr=3e-3, mqar_features=64,
           lola_length=32, lola_window=4, lola_sparse=6, lola_pairs=32, lola_cache=[0, 4, 8, 16, 24, 32],
           lola_seeds=16)
SMOKE = dict(favor_draws=50, favor_features=[4, 16, 64], favor_seeds=2, favor_average_draws=40, live_lengths=[256, 512],
             live_gen_lengths=[128, 256], live_repeats=1, mqar_train=128, mqar_test=32, mqar_steps=2,
             mqar_batch=16, lola_seeds=1)
