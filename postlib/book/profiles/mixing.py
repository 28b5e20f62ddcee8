"""Part 5, chapters/05_mixing: gMLP and ConvMixer (mlp_conv.md), RWKV (rwkv.md).

The recall comparison (MQAR) and the decoding benchmark are read from recorded files
(``python -m postlib.bench mixing-recall`` / ``rwkv-decode``): a live run would not fit the page budget."""
CPU = dict(lag_length=24, lag=3, lag_d_model=32, lag_steps=200, lag_train=1024,
           rf_length=32, rf_depths=[1, 2, 3, 4, 6, 8],
           digits_epochs=8,
           wkv_check_length=97, wkv_check_channels=16, wkv_bench_lengths=[256, 1024], wkv_bench_channels=256,
           wkv_repeats=3, weights_length=24, weights_decays=[0.05, 0.2, 0.5, 1.0, 2.0], trace_length=24)
GPU = dict(lag_length=64, lag=5, lag_d_model=64, lag_steps=600, lag_train=4096,
           rf_length=64, rf_depths=[1, 2, 4, 8, 12, 16],
           digits_epochs=60,
           wkv_check_length=1009, wkv_check_channels=64, wkv_bench_lengths=[1024, 4096, 16384],
           wkv_bench_channels=1024, wkv_repeats=10, weights_length=32, weights_decays=[0.05, 0.2, 0.5, 1.0, 2.0],
           trace_length=32)
SMOKE = dict(lag_steps=3, lag_train=64, digits_epochs=1, wkv_check_length=97, wkv_bench_lengths=[256], wkv_repeats=1)
