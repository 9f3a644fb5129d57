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
