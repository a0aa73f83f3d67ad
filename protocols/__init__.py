"""Data package: the top-level protocols/ directory ships in the wheel as ``netemu.protocols``.

Nothing to import here; read the files with ``importlib.resources.files("netemu.protocols")``.
"""
