"""Stack networks compared on the training cache's held-out shard, per degradation family.

    python benchmarks/stack_held_out.py LEVEL A.pt B.pt [C.pt+D.pt ...] [--shards 5]

Each weight file (``A.pt+B.pt``: the mean of both networks' outputs) runs once on the merged
channels of every held-out pair (the last of ``--shards`` cache shards, which ``models.train_stack
--shards`` never trains on; made on first use) of every family. Prints per family the mean PSNR
of the plain registered mean and of each network (normalised units, data range 1, 4-px border
cropped) and each network's worst pair against that registered mean. The network alone: no mirror
ensemble, no still-stack blend, no clipping; quick comparisons between training runs.
"""
from __future__ import annotations

import argparse

import numpy as np

from models.archs import load_weights
from models.data.stack_pairs import TRAIN_FAMILIES, build_cache, load_cache
from models.interface import NOISE_LEVELS
from models.stack.learned import LEVEL_REGISTRATION, network_inputs
from models.train_stack import cropped_psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("level", choices=NOISE_LEVELS)
    parser.add_argument("weights", nargs="+", help="weight files; A.pt+B.pt averages the two networks")
    parser.add_argument("--shards", type=int, default=5, help="cache shards per family; the last is the held-out one")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    nets = {name: [load_weights(part)[0].eval() for part in name.split("+")] for name in args.weights}
    for family in TRAIN_FAMILIES:
        held_out = build_cache(args.level, family, "train", args.shards, LEVEL_REGISTRATION[args.level])[-1]
        merged, targets, _ = load_cache([held_out])
        merge_psnr, net_psnr = [], {name: [] for name in nets}
        for channels, target in zip(merged, targets):
            merge_psnr.append(cropped_psnr(channels[1:2], target))
            x = torch.from_numpy(network_inputs(channels)[None])
            with torch.inference_mode():
                for name, parts in nets.items():
                    out = sum(net(x)[0].numpy() for net in parts) / len(parts)
                    net_psnr[name].append(cropped_psnr(out, target))
        base = np.array(merge_psnr)
        print(f"{family:8s} registered mean {base.mean():.2f} | " + " | ".join(
            f"{name} {np.mean(v):.2f} (worst {np.min(np.array(v) - base):+.2f})" for name, v in net_psnr.items()), flush=True)


if __name__ == "__main__":
    main()
