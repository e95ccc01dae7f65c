"""The build step that puts the built-in spaces and sweeps inside the package.

The repository keeps `search_spaces/` and `sweeps/` at its top level, where users read and copy
them; a wheel must carry them, so that an installed package finds them from any folder
(mnist_sweep/files.py looks in mnist_sweep/builtin/ after the checkout). Everything else about
the build is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FOLDERS = ("search_spaces", "sweeps")


class BuildWithBuiltins(build_py):
    def run(self) -> None:
        super().run()
        for folder in FOLDERS:
            target = Path(self.build_lib, "mnist_sweep", "builtin", folder)
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(Path(folder).glob("*.yaml")):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithBuiltins})
