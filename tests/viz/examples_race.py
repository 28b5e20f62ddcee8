"""Catalogue examples: postlib.viz.race, drawn from the recorded race (see catalogue.py)."""
from postlib.bench import load_results
from postlib.viz import race

EXAMPLES = {
    # every registered mixer: ten curves, crosses where each stopped, the memory budget dashed
    "race.race_figure": lambda: race.race_figure(load_results("cpu_race.json")),
    "race.race_figure#backward": lambda: race.race_figure(load_results("cpu_race.json"), mode="forward_backward"),
    "race.race_summary_figure": lambda: race.race_summary_figure(load_results("cpu_race.json")),
}
EXAMPLES["race.race_devices_figure"] = lambda: race.race_devices_figure(
    {"CPU": load_results("cpu_race.json"), "GPU": None}, names=["softmax", "mamba", "linear"])
EXAMPLES["race.race_devices_figure#two"] = lambda: race.race_devices_figure(
    {"CPU": load_results("cpu_race.json"), "laptop": load_results("cpu_mixers.json")}, mode="forward_backward")
