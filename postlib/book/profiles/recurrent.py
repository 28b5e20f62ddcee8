"""chapters/06_sparse_recurrent/recurrent_causal: Transformer-XL, RetNet and Mega (about a minute on a CPU)."""
CPU = dict(family_length=37, forms_length=61, chunk_size=16,
           ret_lengths=[512, 1024, 2048, 4096], ret_parallel_lengths=[512, 1024, 2048], ret_heads=4, ret_head_dim=64,
           ret_repeats=3, decode_lengths=[256, 1024, 4096], decode_d_model=256, decode_repeats=7,
           decay_length=64, state_length=24, window_length=32, ema_length=48,
           copy_delay=12, copy_segment=8, copy_length=64, copy_vocab=16, copy_train=2000, copy_test=256,
           copy_steps=300, predict_steps=40, copy_d_model=32, copy_layers=2, mixer_d_model=32, mixer_length=37)
GPU = dict(family_length=37, forms_length=61, chunk_size=16,
           ret_lengths=[1024, 4096, 16384, 65536], ret_parallel_lengths=[1024, 4096, 8192], ret_heads=8,
           ret_head_dim=64, ret_repeats=10, decode_lengths=[256, 2048, 16384], decode_d_model=512, decode_repeats=21,
           decay_length=64, state_length=24, window_length=32, ema_length=48,
           copy_delay=12, copy_segment=8, copy_length=64, copy_vocab=16, copy_train=8000, copy_test=1024,
           copy_steps=800, predict_steps=40, copy_d_model=64, copy_layers=2, mixer_d_model=64, mixer_length=37)
SMOKE = dict(ret_lengths=[128, 256], ret_parallel_lengths=[128, 256], ret_repeats=1, decode_lengths=[128, 256],
             decode_repeats=1, copy_train=64, copy_test=32, copy_steps=2, predict_steps=2)
