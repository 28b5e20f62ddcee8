"""Part 7, chapters/07_lab/race.md: the scaling race (a quick live race; the full one is recorded).

``live_total_s`` bounds each of the page's two live races (softmax alone, then the others) in seconds.
"""
CPU = dict(live_lengths=[256, 512, 1024, 2048], live_d_model=64, live_max_mib=160, live_call_s=0.5, live_total_s=20,
           live_repeats=2)
GPU = dict(live_lengths=[1024, 2048, 4096, 8192, 16384], live_d_model=64, live_max_mib=4096, live_call_s=0.5,
           live_total_s=60, live_repeats=5)
SMOKE = dict(live_lengths=[256, 512, 2048], live_call_s=0.2, live_total_s=3, live_repeats=1)
