"""The Python examples of README.md and docs/ run as written: each document's ```python blocks,
in order, in one fresh interpreter (later blocks may use names of earlier ones), in a temporary
folder so that files they write land there."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             if "```python" in p.read_text()]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)

#: documents whose later blocks are fragments over other files (a BatchNorm model, the output of
#: `odenet trace`, a user's own record class): only these blocks run end to end
RUNNABLE_BLOCKS = {"hdf5-format.md": [0]}

#: what a document's examples take as given, made small: a file its text builds with a long
#: command (`scripts/continuum_limit_study.py` writes continuum.h5), a network and test data
PREPARE = {
    "continuum-limit.md": """
import torch
from odenet import ResNet, SmoothField, circles
from analysis.continuum import depth_study
import analysis.io
g = torch.Generator().manual_seed(3)
x = torch.randn(16, 4, dtype=torch.float64, generator=g)
field = SmoothField(torch.randn(5, 4, 4, dtype=torch.float64, generator=g) / 2,
                    torch.randn(5, 4, dtype=torch.float64, generator=g), T=1.0)
analysis.io.save("continuum.h5", {"depth_study": depth_study(field, x, (8, 16, 32, 64))})
data = circles(seed=0)
net = ResNet.neural_ode(2, 2, 1, depth=8, T=2.0, input_map="activated", output="sigmoid").double()
x_test, y_test = data.x_test.double(), data.y_test.double()
""",
}


def test_the_documents_with_examples_are_found():
    assert {p.name for p in DOCUMENTS} >= {"README.md", "hdf5-format.md", "continuum-limit.md"}


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.name)
def test_examples_run_as_written(doc, tmp_path):
    blocks = BLOCK.findall(doc.read_text())
    code = "\n\n".join(blocks[i] for i in RUNNABLE_BLOCKS.get(doc.name, range(len(blocks))))
    assert code.strip(), f"{doc.name} has no python block"
    code = PREPARE.get(doc.name, "") + "\n" + code
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, f"{doc.name}:\n{run.stderr[-4000:]}"
