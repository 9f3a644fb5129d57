"""The README's API example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_api_example_runs():
    text = README.read_text()
    blocks = re.findall(r"## API\n\n```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README must have a python example right under '## API'"
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 14
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})


def test_readme_training_free_calibration_example_runs():
    text = README.read_text()
    blocks = re.findall(r"converts without retraining.*?```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README must show training-free conversion with DA calibration"
    code = "import ann2snn as a2s\n" + blocks[0]
    assert 'calibration="da"' in code
    exec(compile(code, str(README), "exec"), {"__name__": "readme_calibration_example"})


def test_calibration_doc_api_example_runs():
    doc = README.parent / "docs" / "calibration.md"
    blocks = re.findall(r"## API\n\n```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks, "docs/calibration.md must have a python example under '## API'"
    exec(compile(blocks[0], str(doc), "exec"), {"__name__": "calibration_doc_example"})
