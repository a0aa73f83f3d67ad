"""Packaging glue that pyproject.toml cannot express.

setuptools' ``packages.find`` only discovers directories under their own names, so the package
list is built here: every ``netemu*`` package, plus ``netemu.protocols``, which ``package-dir`` in
pyproject.toml maps to the top-level ``protocols/`` directory (the SGP spec, test vectors and the
Wireshark dissector ship inside the wheel and are found with importlib.resources).
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["netemu", "netemu.*"]), "netemu.protocols"])
