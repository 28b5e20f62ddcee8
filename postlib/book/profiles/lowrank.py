"""Chapter 8, chapters/04_lowrank: attention spectra, Linformer's rank, LSH statistics, reversible memory."""
CPU = dict(map_length=48, head_dim=16, spectrum_pairs=6, spectrum_steps=300, rank_length=96,
           ranks=[1, 2, 4, 8, 16, 32, 64], rank_seeds=2, lsh_trials=2000, recall_length=256,
           depths=[1, 2, 4, 8, 16])
GPU = dict(map_length=64, head_dim=16, spectrum_pairs=16, spectrum_steps=1500, rank_length=256,
           ranks=[1, 2, 4, 8, 16, 32, 64, 128], rank_seeds=4, lsh_trials=4000, recall_length=1024,
           depths=[1, 2, 4, 8, 16, 32])
SMOKE = dict(spectrum_steps=2, ranks=[1, 4, 16], rank_seeds=1, lsh_trials=100, depths=[1, 2, 4])
