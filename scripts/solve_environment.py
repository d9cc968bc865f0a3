"""Dry-run solve of environment.yml's conda dependencies with py-rattler (the solver of pixi): installs nothing, needs the channels.

    python -m pip install py-rattler pyyaml && python scripts/solve_environment.py [environment.yml] [--cuda 12.8]

Solves for linux-64 with strict channel priority (the file's channel order) and a virtual CUDA driver of --cuda,
and prints the versions chosen for python, cuda-version, pytorch (and its build), torchvision and cuml. The pip
section is not solved (pip does that at `conda env create`). From the development machines conda.anaconda.org
cannot be reached, so this has only been run where it fails with a DNS error; run it where the channels are reachable.
"""
import argparse, asyncio, sys

import rattler, yaml


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default="environment.yml")
    ap.add_argument("--cuda", default="12.8", help="the driver's CUDA version, as the __cuda virtual package")
    a = ap.parse_args()
    env = yaml.safe_load(open(a.file))
    specs = [rattler.MatchSpec(d.split("#")[0].strip()) for d in env["dependencies"] if isinstance(d, str)]
    virtual = [rattler.GenericVirtualPackage(rattler.PackageName(n), rattler.Version(v), rattler.BuildString("0"))
               for n, v in (("__linux", "6.1"), ("__glibc", "2.35"), ("__unix", "0"), ("__cuda", a.cuda))]
    print(f"channels {env['channels']}; {len(specs)} specs: {', '.join(map(str, specs))}", flush=True)
    records = asyncio.run(rattler.solve(env["channels"], specs, platforms=["linux-64", "noarch"], virtual_packages=virtual))
    print(f"solved: {len(records)} packages")
    for r in records:
        if r.name.normalized in ("python", "cuda-version", "pytorch", "torchvision", "cuml", "cupy", "numpy"):
            print(f"  {r.name.normalized} {r.version} {r.build} ({r.channel})")
    return 0


if __name__ == "__main__": sys.exit(main())
