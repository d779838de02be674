"""The delivery engine: fan-out, the batch worker, retry policy, the safe HTTP sender, signing."""
