"""The API example of docs/calibration.md runs as written (README blocks: test_readme.py)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_calibration_doc_api_example_runs():
    doc = README.parent / "docs" / "calibration.md"
    blocks = re.findall(r"## API\n\n```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks, "docs/calibration.md must have a python example under '## API'"
    exec(compile(blocks[0], str(doc), "exec"), {"__name__": "calibration_doc_example"})
