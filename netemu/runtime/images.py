"""The netemu container image, built with no container registry.

A minimal Debian root filesystem with ``python3`` (``debootstrap`` from the Debian mirror the
host's apt already uses) is cached as a tarball; netemu and its Python dependencies are added
on top and the result is loaded with ``docker import``. Two ways to add the Python packages:

* ``host`` (default when the host's Python has the rootfs's version, 3.11 for bookworm): the
  installed distributions of netemu's dependency closure are copied from the running
  interpreter's environment: no network at all beyond the Debian mirror. netemu itself comes
  from a wheel built from the source tree (``pip wheel --no-deps``) when it is installed
  editable, else from its installed files.
* ``pip``: ``pip install --target`` with the rootfs's Python version and manylinux binary
  wheels from the index pip is configured with.

The finished image tarball is cached too, under a key made of the base rootfs, the
distributions' versions and a hash of netemu's files, so a second build (or an import into a
fresh private engine) is a ``docker import`` only.

>>> tag = build_image(env=engine.env)                           # doctest: +SKIP
>>> tag
'netemu-node:0.1.0'

Command line: ``netemu image build [--tag T] [--cache DIR] [--mirror URL]``. For machines with
a registry, ``docker/Dockerfile`` builds an equivalent image the standard way.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..errors import NetemuError

__all__ = [
    "DEFAULT_SUITE",
    "base_rootfs",
    "build_image",
    "default_cache_dir",
    "default_image_tag",
    "dependency_closure",
    "host_mirror",
    "image_exists",
    "image_tarball",
]

log = logging.getLogger(__name__)

DEFAULT_SUITE = "bookworm"
#: Python version of Debian's python3 per suite (what the copied packages must match).
SUITE_PYTHON = {"bookworm": (3, 11), "trixie": (3, 13)}
#: Debian packages in the base rootfs besides debootstrap's minbase.
BASE_PACKAGES = ("python3", "iproute2", "procps")
#: Directories dropped from the rootfs (documentation, manual pages, apt's package lists).
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "var/lib/apt/lists", "var/cache/apt")
#: Modules the image must import (checked in a chroot before ``docker import``).
SMOKE_IMPORTS = (
    "netemu.runtime.node_host",
    "netemu.runtime.fabric_host",
    "netemu.control.broker",
    "netemu.control.controller",
    "netemu.results",
    "amqtt.broker",
    "amqtt.plugins.authentication",
    "aiomqtt",
    "uvloop",
    "numpy",
)

Progress = Callable[[str], None]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/netemu/images`` (``~/.cache/netemu/images``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netemu" / "images"


def default_image_tag() -> str:
    return f"netemu-node:{_netemu_version()}"


def _netemu_version() -> str:
    try:
        return md.version("netemu")
    except md.PackageNotFoundError:
        return "dev"


def host_mirror(suite: str = DEFAULT_SUITE, sources: list[Path] | None = None) -> str | None:
    """The Debian mirror URL the host's apt uses for ``suite`` (not its security archive), read
    from ``/etc/apt/sources.list`` and ``/etc/apt/sources.list.d/*.{list,sources}``."""
    if sources is None:
        d = Path("/etc/apt/sources.list.d")
        sources = [Path("/etc/apt/sources.list")]
        if d.is_dir():
            sources += sorted(d.glob("*.sources")) + sorted(d.glob("*.list"))
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (
                        line.partition(":")
                        for line in stanza.splitlines()
                        if line.strip() and not line.lstrip().startswith("#")
                    )
                )
                if "deb" not in fields.get("types", "").split():
                    continue
                if suite in fields.get("suites", "").split() and fields.get("uris"):
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
    return None


def _say(progress: Progress | None, text: str) -> None:
    log.info("%s", text)
    if progress is not None:
        progress(text)


# -- base root filesystem ------------------------------------------------------------------------


def base_rootfs(
    cache_dir: str | os.PathLike | None = None,
    *,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """A tarball of a minimal Debian ``suite`` with python3, made once with ``debootstrap``
    and cached as ``CACHE/debian-SUITE-python3.tar``. Needs root and ``debootstrap``."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    tarball = cache / f"debian-{suite}-python3.tar"
    if tarball.is_file():
        return tarball
    if os.geteuid() != 0:
        raise NetemuError("building the base root filesystem (debootstrap) needs root")
    exe = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(exe):
        raise NetemuError("debootstrap is not installed (apt-get install -y debootstrap)")
    mirror = mirror or host_mirror(suite)
    if not mirror:
        raise NetemuError(
            f"no Debian mirror for {suite} in the host's apt sources; pass --mirror URL"
        )
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache))
    try:
        root = work / "root"
        _say(progress, f"debootstrap {suite} (minbase + {', '.join(BASE_PACKAGES)})")
        cmd = [
            exe,
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            suite,
            str(root),
            mirror,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n  ".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            raise NetemuError(f"debootstrap failed (status {proc.returncode}):\n  {tail}")
        for rel in TRIM:
            target = root / rel
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        partial = work / "rootfs.tar"
        _tar_dir(root, partial)
        partial.replace(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def _tar_dir(root: Path, dest: Path) -> None:
    proc = subprocess.run(
        ["tar", "--numeric-owner", "-C", str(root), "-cf", str(dest), "."],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise NetemuError(f"tar of {root} failed: {proc.stderr.strip()}")


# -- Python packages -----------------------------------------------------------------------------


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(root: str = "netemu") -> list[md.Distribution]:
    """The installed distributions ``root`` needs (its own included), following the extras
    its requirements ask for (``pwdlib[argon2]``) but not ``root``'s own optional extras."""
    from packaging.requirements import Requirement

    seen: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [(root, "")]
    while todo:
        name, extra = todo.pop()
        key = _canon(name)
        if (key, extra) in done:
            continue
        done.add((key, extra))
        dist = seen.get(key)
        if dist is None:
            try:
                dist = md.distribution(name)
            except md.PackageNotFoundError:
                raise NetemuError(
                    f"{name} (needed by {root}) is not installed in this Python environment"
                ) from None
            seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            if req.marker is None and extra:
                continue  # listed under the base requirements, already followed
            todo.append((req.name, ""))
            todo.extend((req.name, e) for e in req.extras)
    return [seen[k] for k in sorted(seen)]


def _source_tree() -> Path | None:
    """The source checkout netemu runs from (editable install), if any."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file() and (here / "netemu" / "__init__.py").is_file():
        return here
    return None


def _netemu_wheel(dest: Path) -> Path | None:
    source = _source_tree()
    if source is None:
        return None
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run([*cmd, "-w", str(dest), str(source)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NetemuError(f"building the netemu wheel failed:\n{proc.stderr.strip()[-2000:]}")
    wheels = sorted(dest.glob("netemu-*.whl"))
    if not wheels:
        raise NetemuError("pip wheel produced no netemu wheel")
    return wheels[-1]


def _copy_distribution(dist: md.Distribution, site: Path) -> int:
    """Copy an installed distribution's files that live in site-packages; returns the count."""
    base = Path(dist.locate_file("")).resolve()
    n = 0
    for rel in dist.files or []:
        src = Path(dist.locate_file(rel)).resolve()
        try:
            inside = src.relative_to(base)
        except ValueError:
            continue  # scripts in bin/ and other files outside site-packages
        if not src.is_file():
            continue
        target = site / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        n += 1
    return n


def _install_host(site: Path, work: Path, progress: Progress | None) -> None:
    dists = dependency_closure("netemu")
    wheel = None
    netemu = next(d for d in dists if _canon(d.metadata["Name"]) == "netemu")
    if _source_tree() is not None:  # editable install or a checkout: the tree as a wheel
        _say(progress, "building the netemu wheel from the source tree")
        wheel = _netemu_wheel(work / "wheel")
    _say(progress, f"copying {len(dists)} Python distributions from this environment")
    for dist in dists:
        if wheel is not None and dist is netemu:
            continue
        _copy_distribution(dist, site)
    if wheel is not None:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)


def _install_pip(site: Path, work: Path, py: tuple[int, int], progress: Progress | None) -> None:
    source = _source_tree()
    target = str(_netemu_wheel(work / "wheel")) if source is not None else "netemu"
    _say(progress, f"pip install --target for Python {py[0]}.{py[1]} (manylinux wheels)")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--target",
        str(site),
        "--python-version",
        f"{py[0]}.{py[1]}",
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--platform",
        "manylinux2014_x86_64",
        "--platform",
        "manylinux_2_28_x86_64",
        "--platform",
        "manylinux_2_34_x86_64",
        target,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NetemuError(f"pip install into the image failed:\n{proc.stderr.strip()[-2000:]}")


_ENTRY = "#!/usr/bin/python3\nimport sys\n\nfrom netemu.cli import main\n\nsys.exit(main())\n"


def _fingerprint(base: Path, install: str) -> str:
    h = hashlib.sha256()
    h.update(f"{base.name} {base.stat().st_size} {install}\n".encode())
    for dist in dependency_closure("netemu"):
        h.update(f"{_canon(dist.metadata['Name'])}=={dist.version}\n".encode())
    source = _source_tree()
    if source is not None:
        for sub in ("netemu", "protocols"):
            for path in sorted((source / sub).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    h.update(str(path.relative_to(source)).encode())
                    h.update(path.read_bytes())
        h.update((source / "pyproject.toml").read_bytes())
    return h.hexdigest()[:12]


def image_tarball(
    cache_dir: str | os.PathLike | None = None,
    *,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
    install: str = "auto",
    progress: Progress | None = None,
) -> Path:
    """The image's root filesystem as a tarball (cached): base rootfs + netemu and its
    dependencies in ``/usr/local/lib/python3.X/dist-packages`` + ``/usr/local/bin/netemu``.
    ``install``: ``auto``, ``host`` or ``pip`` (module docstring)."""
    py = SUITE_PYTHON.get(suite)
    if py is None:
        raise NetemuError(f"unknown suite {suite!r}; known: {', '.join(SUITE_PYTHON)}")
    if install == "auto":
        install = "host" if sys.version_info[:2] == py else "pip"
    if install not in ("host", "pip"):
        raise NetemuError(f"install must be auto, host or pip, got {install!r}")
    if install == "host" and sys.version_info[:2] != py:
        raise NetemuError(
            f"install=host copies this Python's packages, which are for "
            f"{sys.version_info[0]}.{sys.version_info[1]}; {suite}'s python3 is {py[0]}.{py[1]} "
            f"(use install=pip)"
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    base = base_rootfs(cache, suite=suite, mirror=mirror, progress=progress)
    key = _fingerprint(base, install)
    tarball = cache / f"netemu-node-{_netemu_version()}-{suite}-{key}.tar"
    if tarball.is_file():
        return tarball
    work = Path(tempfile.mkdtemp(prefix="image-", dir=cache))
    try:
        root = work / "root"
        root.mkdir()
        _say(progress, f"unpacking {base.name}")
        with tarfile.open(base) as tf:
            tf.extractall(root, filter="fully_trusted")
        site = root / f"usr/local/lib/python{py[0]}.{py[1]}/dist-packages"
        site.mkdir(parents=True, exist_ok=True)
        if install == "host":
            _install_host(site, work, progress)
        else:
            _install_pip(site, work, py, progress)
        entry = root / "usr/local/bin/netemu"
        entry.write_text(_ENTRY)
        entry.chmod(0o755)
        _smoke_test(root)
        _say(progress, "writing the image tarball")
        partial = work / "image.tar"
        _tar_dir(root, partial)
        partial.replace(tarball)
        for old in cache.glob(f"netemu-node-*-{suite}-*.tar"):
            if old != tarball:
                old.unlink(missing_ok=True)  # keep one image tarball per suite
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def _smoke_test(root: Path) -> None:
    """Import what the node, fabric, broker and controller need, with the rootfs's own python3
    (``chroot``), so a broken image fails here and not in the first container."""
    code = "import " + ", ".join(SMOKE_IMPORTS)
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    proc = subprocess.run(
        [chroot, str(root), "/usr/bin/python3", "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root"},
    )
    if proc.returncode != 0:
        raise NetemuError(f"the image's python3 cannot import netemu:\n{proc.stderr[-2000:]}")


# -- docker import -------------------------------------------------------------------------------


def _docker(args: list[str], env: dict[str, str] | None, **kw) -> subprocess.CompletedProcess:
    if shutil.which("docker") is None:
        raise NetemuError("the docker client is not installed (apt-get install -y docker.io)")
    return subprocess.run(
        ["docker", *args], env={**os.environ, **(env or {})}, capture_output=True, **kw
    )


def image_exists(tag: str, env: dict[str, str] | None = None) -> bool:
    return _docker(["image", "inspect", tag], env).returncode == 0


def build_image(
    tag: str | None = None,
    *,
    env: dict[str, str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
    install: str = "auto",
    rebuild: bool = False,
    progress: Progress | None = None,
) -> str:
    """Build (or reuse) the netemu image and ``docker import`` it as ``tag`` into the engine
    that ``env`` points at (``DOCKER_HOST``). Returns the tag."""
    tag = tag or default_image_tag()
    tarball = image_tarball(
        cache_dir, suite=suite, mirror=mirror, install=install, progress=progress
    )
    label = f"org.netemu.rootfs={tarball.name}"
    fmt = '{{.Id}} {{index .Config.Labels "org.netemu.rootfs"}}'
    proc = _docker(["image", "inspect", "--format", fmt, tag], env, text=True)
    old_id, _, old_label = (
        proc.stdout.strip().partition(" ") if proc.returncode == 0 else ("", "", "")
    )
    if not rebuild and old_label == tarball.name:
        return tag
    _say(progress, f"docker import {tarball.name} as {tag}")
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV PYTHONUNBUFFERED=1",
        f"LABEL {label}",
        "WORKDIR /",
        'CMD ["netemu", "--help"]',
    ]
    args = ["import"]
    for change in changes:
        args += ["--change", change]
    proc = _docker([*args, str(tarball), tag], env, text=True)
    if proc.returncode != 0:
        raise NetemuError(f"docker import failed: {proc.stderr.strip()}")
    if old_id:
        # the previous build, now untagged: 575 MB each in a kept data root (fails harmlessly
        # while a container still uses it)
        _docker(["image", "rm", old_id], env)
    return tag
