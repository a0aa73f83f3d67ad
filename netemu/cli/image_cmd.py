"""``netemu image build``: the netemu container image without a registry (docker/README.md)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "image",
        help="build the netemu container image without a registry (debootstrap + docker import)",
        description="Build the image that --isolation docker and netemu compose run: a minimal "
        "Debian root filesystem with python3 (debootstrap, cached), netemu and its Python "
        "dependencies, loaded with docker import. Needs root, debootstrap and a Docker engine "
        "(DOCKER_HOST, or --private-engine to start one just for the import, which keeps "
        "nothing: use it to check the build). docker/Dockerfile is the standard alternative.",
    )
    isub = p.add_subparsers(dest="image_command", metavar="ACTION")
    isub.required = True
    b = isub.add_parser("build", help="build (or reuse) the image and docker import it")
    b.add_argument("--tag", default=None, help="image tag (default netemu-node:VERSION)")
    b.add_argument(
        "--cache",
        default=None,
        metavar="DIR",
        help="tarball cache (default ~/.cache/netemu/images)",
    )
    b.add_argument(
        "--mirror",
        default=None,
        metavar="URL",
        help="Debian mirror for debootstrap (default: the one the host's apt uses)",
    )
    b.add_argument("--suite", default="bookworm", help="Debian suite (default bookworm)")
    b.add_argument(
        "--install",
        default="auto",
        choices=("auto", "host", "pip"),
        help="host: copy this environment's packages; pip: pip install --target (default auto)",
    )
    b.add_argument("--rebuild", action="store_true", help="import again even if the tag exists")
    b.add_argument(
        "--tarball-only",
        action="store_true",
        help="only write the image tarball (no engine needed); print its path",
    )
    b.add_argument(
        "--private-engine",
        action="store_true",
        help="start a private dockerd for the import and stop it afterwards",
    )
    p.set_defaults(func=cmd_image)


def cmd_image(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..runtime import images

    con = Console(stderr=True)

    def progress(text: str) -> None:
        con.print(f"[dim]{text}[/]")

    if args.tarball_only:
        path = images.image_tarball(
            args.cache,
            suite=args.suite,
            mirror=args.mirror,
            install=args.install,
            progress=progress,
        )
        print(path)
        return 0
    kw = dict(
        cache_dir=args.cache,
        suite=args.suite,
        mirror=args.mirror,
        install=args.install,
        rebuild=args.rebuild,
        progress=progress,
    )
    if args.private_engine:
        from ..runtime.dockerd import PrivateDockerEngine

        with PrivateDockerEngine() as engine:
            tag = images.build_image(args.tag, env=engine.env, **kw)
    else:
        tag = images.build_image(args.tag, **kw)
    print(tag)
    return 0
