"""The main job.  Until the full reproduction lands, a short real result: Euler refinement of a
ResNet towards its neural-ODE flow."""
import argparse
import sys

from odenet.cli import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="results")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.exit(main(["demo"]))
