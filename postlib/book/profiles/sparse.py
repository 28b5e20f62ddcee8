"""Part 6a, chapters/06_sparse_recurrent/sparse_attention: masks, tiles, receptive fields, paths, cost."""
CPU = dict(gallery_length=64, check_lengths=[1, 13, 100], check_tile=16, tile_length=256, tile=16,
           field_length=1024, field_layers=5, field_window=64, field_heads=64,
           path_lengths=[256, 512, 1024, 2048, 4096], path_block=16,
           count_lengths=[1024, 4096, 16384, 65536], live_lengths=[1024, 2048, 4096],
           triton_length=100, decode_steps=300)
GPU = dict(gallery_length=64, check_lengths=[1, 13, 100, 1000], check_tile=64, tile_length=512, tile=32,
           field_length=1024, field_layers=6, field_window=64, field_heads=64,
           path_lengths=[256, 512, 1024, 2048, 4096, 8192, 16384], path_block=16,
           count_lengths=[1024, 4096, 16384, 65536, 262144], live_lengths=[4096, 8192, 16384],
           triton_length=4096, decode_steps=1000)
# Smoke runs cut the counts and the lengths that only cost time (the GPU profile's Triton check at 4096
# tokens runs in Triton's interpreter there: minutes, not seconds).
SMOKE = dict(check_lengths=[1, 13, 100], triton_length=100, path_lengths=[256, 512], count_lengths=[1024, 4096],
             live_lengths=[512, 1024], decode_steps=40)
