"""Chapter 1, chapters/01_baseline: softmax attention, its cost, FlashAttention's tiling, the KV cache."""
CPU = dict(bench_lengths=[128, 256, 512, 1024, 2048], bench_d_model=64, bench_repeats=3,
           memory_lengths=[1024, 2048, 4096, 8192, 16384], map_length=32, tile_length=24, tile_block=6,
           kv_lengths=[128, 256, 512, 1024, 2048], kv_cache_lengths=[128, 512, 2048, 8192, 32768, 131072],
           kv_d_model=64, kv_repeats=5)
GPU = dict(bench_lengths=[512, 1024, 2048, 4096, 8192, 16384], bench_d_model=256, bench_repeats=10,
           memory_lengths=[1024, 2048, 4096, 8192, 16384, 32768], map_length=32, tile_length=24, tile_block=6,
           kv_lengths=[256, 512, 1024, 2048, 4096, 8192], kv_cache_lengths=[256, 1024, 4096, 16384, 65536, 262144],
           kv_d_model=256, kv_repeats=10)
SMOKE = dict(bench_lengths=[128, 256, 512], bench_repeats=1, memory_lengths=[1024, 2048],
             kv_lengths=[128, 256, 512], kv_cache_lengths=[128, 256, 512], kv_repeats=1)
