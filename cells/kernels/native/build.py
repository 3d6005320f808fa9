"""Builds the oneDNN RNN extension (`onednn_rnn.cc` -> `_onednn_rnn.so`, next to it).

    python -m cells.kernels.native.build [--quiet] [--require]

One C++ compile against jaxlib's XLA FFI headers (`jax.ffi.include_dir()`) and an installed
oneDNN (2.x or 3.x with a CPU runtime: OpenMP, TBB or sequential). oneDNN is looked for under
$ONEDNN_ROOT, then this Python's prefix (the venv: `pip install onednn-devel-cpu-gomp`, the
`onednn` extra, which `make install` installs: Intel's oneDNN 3.2 for x86-64 Linux), then /usr
and /usr/local (Debian and Ubuntu: `apt-get install libdnnl-dev`, oneDNN 2.6, measured slower:
its LSTM backward took 1.35x as long at B = 32, T = 128, H = 512, one thread).
The compiler is $CXX or c++. `make install` runs this; the extension is optional, so where
there is no compiler or no oneDNN the build says why in one line and exits 0 (`--require`: 1),
and `cells.scan(..., backend='onednn')` then says the same. Takes about 15 s.

Intel's other oneDNN wheels (`onednn`, `onednn-devel`, 2024 onwards) are DPC++ builds: their CPU
engine is a SYCL device, which their runtime wheels do not provide (no OpenCL adapter), so they
cannot serve here; this build refuses a SYCL-runtime oneDNN by name.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).parent
SOURCE = HERE / "onednn_rnn.cc"
TARGET = HERE / "_onednn_rnn.so"
# After $ONEDNN_ROOT: this Python's prefix (the venv's onednn-devel-cpu-gomp), then the system's.
SEARCH_ROOTS = (sys.prefix, "/usr", "/usr/local")
_RUNTIMES = {"DNNL_RUNTIME_OMP": "omp", "DNNL_RUNTIME_TBB": "tbb", "DNNL_RUNTIME_SEQ": "seq"}


class BuildError(Exception):
    """Why the extension cannot be built (one line)."""


def find_onednn() -> tuple[pathlib.Path, pathlib.Path, str]:
    """(include dir, library dir, CPU threading runtime) of the first usable oneDNN."""
    roots = [os.environ["ONEDNN_ROOT"]] if os.environ.get("ONEDNN_ROOT") else []
    roots += list(SEARCH_ROOTS)
    refused = []
    for root in map(pathlib.Path, roots):
        config = root / "include" / "oneapi" / "dnnl" / "dnnl_config.h"
        if not config.exists():
            continue
        text = config.read_text()
        cpu = re.search(r"#define DNNL_CPU_RUNTIME (\w+)", text)
        threading = re.search(r"#define DNNL_CPU_THREADING_RUNTIME (\w+)", text)
        if cpu is None or threading is None or cpu.group(1) not in _RUNTIMES:
            refused.append(f"{root} (CPU runtime {cpu.group(1) if cpu else 'unknown'})")
            continue
        libs = [d for d in (root / "lib", root / "lib64", *root.glob("lib/*-linux-gnu"))
                if any(d.glob("libdnnl.so*"))]  # fmt: skip
        if not libs:
            refused.append(f"{root} (headers but no libdnnl.so)")
            continue
        return root / "include", libs[0], _RUNTIMES[threading.group(1)]
    why = f"; refused: {', '.join(refused)}" if refused else ""
    raise BuildError(
        f"no oneDNN with a CPU runtime found under {', '.join(roots)}{why} "
        "(pip install onednn-devel-cpu-gomp, or Debian's libdnnl-dev, or set ONEDNN_ROOT)"
    )


def command(output: pathlib.Path) -> list[str]:
    """The compiler command line for this machine."""
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler or not shutil.which(compiler):
        raise BuildError(
            f"no C++ compiler found ({compiler or 'c++, g++'}; set CXX, or install g++)"
        )
    try:
        import jax.ffi
    except ImportError as e:
        raise BuildError(f"jax is not importable ({e})") from None
    include, libdir, runtime = find_onednn()
    threading = {"omp": ["-fopenmp"], "tbb": ["-ltbb"], "seq": []}[runtime]
    # /usr/include is searched already (as -isystem it would break the C++ headers' order)
    extra = [] if include == pathlib.Path("/usr/include") else ["-isystem", str(include)]
    return [
        compiler, "-std=c++17", "-O2", "-fPIC", "-shared",
        "-isystem", jax.ffi.include_dir(), *extra,
        str(SOURCE), "-o", str(output),
        f"-L{libdir}", "-ldnnl", *threading,
        # DT_RPATH (not RUNPATH): found for libdnnl's own dependencies too
        f"-Wl,--disable-new-dtags,-rpath,{libdir}",
    ]  # fmt: skip


def build(quiet: bool = False) -> pathlib.Path:
    """Compiles the extension into TARGET (atomically: a failed build leaves the old one)."""
    command(TARGET)  # raises BuildError before anything is written
    with tempfile.TemporaryDirectory(dir=TARGET.parent) as tmp:
        partial = pathlib.Path(tmp) / TARGET.name
        cmd = command(partial)
        if not quiet:
            print(" ".join(cmd), file=sys.stderr)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            errors = [ln for ln in result.stderr.splitlines() if "error:" in ln]
            raise BuildError(f"the compiler failed: {(errors or ['(no message)'])[0]}")
        os.replace(partial, TARGET)
    return TARGET


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print only the outcome")
    parser.add_argument("--require", action="store_true", help="exit 1 when it cannot build")
    args = parser.parse_args(argv)
    try:
        path = build(args.quiet)
    except BuildError as e:
        print(f"oneDNN extension not built: {e}; backend='onednn' is unavailable", file=sys.stderr)
        return 1 if args.require else 0
    print(f"oneDNN extension built: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
