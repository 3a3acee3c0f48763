"""Run ``fit`` in a fresh process (resume and DDP tests): CONFIG_JSON OUT_DIR [--resume].

Prints one JSON record per epoch, flushed, so that the parent can kill it mid-run.
"""

import json
import sys

import torch

from squeezelab.train import TrainConfig, fit

if __name__ == "__main__":
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(json.loads(sys.argv[1]))
    for record in fit(config, sys.argv[2], resume="--resume" in sys.argv):
        print(json.dumps(record.to_dict()), flush=True)
