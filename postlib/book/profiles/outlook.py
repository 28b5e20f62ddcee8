"""Chapter chapters/07_lab/outlook.md: roofline points, long-context demonstrations, Mamba state probes."""
CPU = dict(roof_matmul_n=256, roof_copy_mib=32, roof_length=512, roof_groups=2, roof_scan_length=256, roof_repeats=3,
           traffic_length=1024, stream_lengths=[2048, 8192, 32768], stream_segment=1024, stream_heads=2,
           stream_dim=32, retrieval_memory=32768, retrieval_ks=[1, 4, 16, 64, 256, 1024], retrieval_queries=256,
           copy_length=16, copy_memorize=4, copy_colors=4, copy_train=2000, copy_steps=300, copy_d_model=32,
           copy_d_state=8, copy_lr=1e-2, probe_n=1200)
GPU = dict(roof_matmul_n=2048, roof_copy_mib=256, roof_length=2048, roof_groups=8, roof_scan_length=1024,
           roof_repeats=10, traffic_length=4096, stream_lengths=[8192, 32768, 131072], stream_segment=4096,
           stream_heads=4, stream_dim=64, retrieval_memory=262144, retrieval_ks=[1, 4, 16, 64, 256, 1024, 4096],
           retrieval_queries=1024, copy_length=32, copy_memorize=4, copy_colors=4, copy_train=8000, copy_steps=1000,
           copy_d_model=64, copy_d_state=16, copy_lr=3e-3, probe_n=3000)
SMOKE = dict(roof_matmul_n=64, roof_copy_mib=4, roof_length=128, roof_scan_length=64, roof_repeats=1,
             stream_lengths=[1024, 2048], stream_segment=512, retrieval_memory=1024, retrieval_ks=[1, 16], retrieval_queries=32,
             copy_train=64, copy_steps=2, probe_n=90)
