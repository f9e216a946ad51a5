import os

import torch
from hypothesis import settings

# Two cores on CI: keep torch from oversubscribing them, and keep property tests short.
torch.set_num_threads(min(2, os.cpu_count() or 1))
settings.register_profile("odenet", max_examples=25, deadline=None)
settings.load_profile("odenet")
