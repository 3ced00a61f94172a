"""Device and CPU-thread rules shared by every worker."""
from __future__ import annotations

import cv2
import torch

from models.device import limit_threads, pick_device


def test_pick_device_honours_the_request_and_falls_back_to_what_torch_sees():
    assert pick_device("cpu") == "cpu"
    assert pick_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_limit_threads_caps_torch_and_opencv():
    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        limit_threads(1)
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
