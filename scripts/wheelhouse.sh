#!/usr/bin/env bash
# An offline wheelhouse for the training and GPU-check paths, for a machine that brings its own JAX.
#
#   scripts/wheelhouse.sh DIR [--python 3.12] [--arch x86_64|aarch64] [--glibc 2.28] [--with-jax-libs]
#
# Run it on a connected machine; DIR then holds, for the named Python and Linux platform:
#   *.whl                  dm_control, mujoco, labmaze and the rest of the simulation stack, tqdm and pillow, with
#                          the assets and modules nothing here imports removed (dm_control's soccer, dog and
#                          fruitfly assets and tests, mujoco's experimental studio/viewer libraries, labmaze's
#                          textures, PyOpenGL's Windows DLLs); each slimmed wheel's RECORD is rewritten, so it stays
#                          valid. Under 30 MiB.
#   jax-libs/*.whl         only with --with-jax-libs: flax, optax, orbax-checkpoint and their needs (tensorstore
#                          alone is ~21 MiB), for a machine whose JAX has no libraries installed
#   requirements.txt       what to install from DIR: this workspace's pinned roots (their needs come along)
#   manifest.json          every wheel: group, size before and after slimming
#
# Never in it: jax, jaxlib and what JAX itself needs (numpy, scipy, ml_dtypes, opt_einsum): they come with the
# machine's own JAX (any version with its CUDA plugin; this workspace pins 0.10.2 but runs on 0.11 too). The printed
# command installs DIR into a venv that sees that JAX (--system-site-packages), changing nothing outside the venv.
#
# Versions: the pins of pyproject.toml, and for everything else the versions of the tested .venv (when present).
# The slimmed wheels are checked by importing and building what the tasks use (hrl_core/envs) in a throwaway venv
# when the named Python is the one running this script; tests/test_wheelhouse.py installs and trains from it.
set -euo pipefail
usage="usage: scripts/wheelhouse.sh DIR [--python X.Y] [--arch x86_64|aarch64] [--glibc X.Y] [--with-jax-libs]"
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?$usage}
shift
pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
arch=x86_64 glibc=2.28 jax_libs=
while (($#)); do
    case $1 in
        --python) pyver=${2:?--python needs a version such as 3.12}; shift 2 ;;
        --arch) arch=${2:?--arch needs x86_64 or aarch64}; shift 2 ;;
        --glibc) glibc=${2:?--glibc needs a version such as 2.28}; shift 2 ;;
        --with-jax-libs) jax_libs=1; shift ;;
        *) echo "wheelhouse.sh: unknown argument '$1'; $usage" >&2; exit 2 ;;
    esac
done
[[ $pyver =~ ^3\.[0-9]+$ ]] || { echo "wheelhouse.sh: --python '$pyver' is not valid; give X.Y, e.g. 3.12" >&2; exit 2; }
[[ $arch == x86_64 || $arch == aarch64 ]] || { echo "wheelhouse.sh: --arch '$arch' is not valid; x86_64 or aarch64" >&2; exit 2; }
[[ $glibc =~ ^2\.[0-9]+$ ]] || { echo "wheelhouse.sh: --glibc '$glibc' is not valid; give 2.N, e.g. 2.28" >&2; exit 2; }
# The interpreter that runs pip and the slimming (any Python >= 3.11); the target Python is --python.
python=${PYTHON:-$( [[ -x $root/.venv/bin/python ]] && echo "$root/.venv/bin/python" || command -v python3)}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# pip matches each manylinux tag exactly: name every glibc up to the chosen one.
platforms=()
for ((minor = ${glibc#2.}; minor >= 5; minor--)); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
[[ $arch == x86_64 ]] && platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
[[ $arch == aarch64 ]] && platforms+=(--platform manylinux2014_aarch64)
target=(--only-binary=:all: --python-version "$pyver" --implementation cp --abi "cp${pyver/./}" --abi abi3 --abi none
        "${platforms[@]}")

# Roots with their pyproject pins, and the tested venv's versions as constraints for everything they pull in.
"$python" - "$root/pyproject.toml" > "$work/roots.txt" <<'EOF'
import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
pins = {re.split(r"[=<>\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-"): d for d in deps}
for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "dm-control", "mujoco", "labmaze", "tqdm", "pillow"):
    print(pins[name])
EOF
: > "$work/constraints.txt"
if [[ -x $root/.venv/bin/python ]]; then
    "$root/.venv/bin/python" -m pip freeze --exclude-editable 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' |
        grep -viE '^(jax|jaxlib|numpy|scipy|ml[-_]dtypes|opt[-_]einsum|torch|torchvision)==' > "$work/constraints.txt" || true
fi

echo "wheelhouse: resolving for Python $pyver, manylinux (glibc <= $glibc) $arch" >&2
"$python" -m pip install --dry-run --ignore-installed --quiet --report "$work/report.json" "${target[@]}" \
    -r "$work/roots.txt" -c "$work/constraints.txt" 2> >(grep -v "^WARNING: Location" >&2)

# Groups: JAX's own (left out), the core (closure of the simulation stack, tqdm and pillow), the JAX libraries.
"$python" - "$work/report.json" "$pyver" "$arch" "$work" <<'EOF'
import json, sys
try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
except ImportError:  # pip's own copy
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement

report, pyver, arch, work = sys.argv[1:]
env = {**default_environment(), "python_version": pyver, "python_full_version": pyver + ".0",
       "sys_platform": "linux", "platform_system": "Linux", "platform_machine": arch, "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython"}
norm = lambda name: name.lower().replace("_", "-").replace(".", "-")  # noqa: E731
items = {norm(i["metadata"]["name"]): i for i in json.load(open(report))["install"]}


def needs(name, extras=()):
    for text in items[name]["metadata"].get("requires_dist", []):
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)):
            if norm(req.name) in items:
                yield norm(req.name), tuple(req.extras)


def closure(roots):
    seen, todo = set(), [(r, ()) for r in roots]
    while todo:
        name, extras = todo.pop()
        key = (name, extras)
        if key in seen:
            continue
        seen.add(key)
        todo.extend(needs(name, extras))
    return {name for name, _ in seen}


jax_own = closure(["jax", "jaxlib"])
core = closure(["dm-control", "mujoco", "labmaze", "tqdm", "pillow"]) - jax_own
libs = closure(["flax", "optax", "orbax-checkpoint"]) - jax_own - core
for group, names in (("core", core), ("jax-libs", libs)):
    with open(f"{work}/{group}.txt", "w") as f:
        f.writelines(f"{items[n]['metadata']['name']}=={items[n]['metadata']['version']}\n" for n in sorted(names))
print(f"wheelhouse: {len(core)} core packages, {len(libs)} JAX libraries; left out as JAX's own: "
      f"{', '.join(sorted(jax_own))}", file=sys.stderr)
EOF

download() {  # download GROUP FOLDER
    mkdir -p "$2"
    "$python" -m pip download --quiet --no-deps -d "$2" "${target[@]}" -r "$work/$1.txt" \
        2> >(grep -v "^WARNING: Location" >&2)
}
rm -f "$dir"/*.whl "$dir"/requirements.txt "$dir"/manifest.json
rm -rf "$dir/jax-libs"
download core "$work/core"
[[ -n $jax_libs ]] && download jax-libs "$work/jax-libs"

# Slim: drop unimported files, rewrite RECORD (sha256, size) for what stays, recompress; copy the others unchanged.
"$python" - "$work" "$dir" "$jax_libs" <<'EOF'
import base64, fnmatch, hashlib, json, shutil, sys, zipfile
from pathlib import Path

work, out, with_libs = Path(sys.argv[1]), Path(sys.argv[2]), bool(sys.argv[3])
# What the tasks never import (hrl_core/envs: suite walker/cheetah/quadruped, locomotion mazes with the ant and the
# rolling ball): other walkers' and sports' assets, test data and tests, viewers, exporters, editor GUIs.
DROP = {
    "dm_control": ["dm_control/locomotion/soccer/*", "dm_control/locomotion/walkers/assets/build_fruitfly/*",
                   "dm_control/locomotion/walkers/assets/fruitfly_v2/*", "dm_control/locomotion/walkers/assets/dog_v2/*",
                   "dm_control/suite/dog_assets/*", "dm_control/mujoco/testing/*", "dm_control/mjcf/test_assets/*",
                   "dm_control/blender/*", "dm_control/locomotion/arenas/assets/outdoor_natural/*", "*_test.py"],
    "mujoco": ["mujoco/experimental/*", "mujoco/_render_filament*", "mujoco/_simulate*", "mujoco/testdata/*",
               "mujoco/include/*", "mujoco/usd/*", "mujoco/sysid/*", "*_test.py"],
    "labmaze": ["labmaze/assets/style_*", "labmaze/assets/sky_*", "*_test.py"],
    "pyopengl": ["OpenGL/DLLS/*"],
}


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def slim(src: Path, dst: Path, patterns) -> None:
    with zipfile.ZipFile(src) as zin:
        record = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        keep = [i for i in zin.infolist() if i.filename != record and not i.is_dir()
                and not any(fnmatch.fnmatch(i.filename, p) for p in patterns)]
        lines = []
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
            for info in keep:
                data = zin.read(info)
                zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                lines.append(f"{info.filename},{record_hash(data)},{len(data)}")
            lines.append(f"{record},,")
            zout.writestr(zin.getinfo(record), "\n".join(lines) + "\n", compress_type=zipfile.ZIP_DEFLATED)


manifest = []
for group in ("core", "jax-libs") if with_libs else ("core",):
    folder = out if group == "core" else out / "jax-libs"
    folder.mkdir(exist_ok=True)
    for wheel in sorted((work / group).glob("*.whl")):
        dist = wheel.name.split("-")[0].lower()
        if dist in DROP:
            slim(wheel, folder / wheel.name, DROP[dist])
        else:
            shutil.copy(wheel, folder / wheel.name)
        manifest.append({"wheel": wheel.name, "group": group, "bytes_before": wheel.stat().st_size,
                         "bytes": (folder / wheel.name).stat().st_size, "slimmed": dist in DROP})
(out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
# Only the roots, pinned: what the machine has already and satisfies them stays as it is; the rest comes from DIR.
libs = ("flax", "optax", "orbax-checkpoint")
roots = [r for r in (work / "roots.txt").read_text().split() if not r.startswith(("jax==", "jaxlib=="))
         and (with_libs or not r.startswith(libs))]
(out / "requirements.txt").write_text("\n".join(roots) + "\n")
for group in ("core", "jax-libs"):
    rows = [m for m in manifest if m["group"] == group]
    if rows:
        print(f"wheelhouse: {group}: {len(rows)} wheels, {sum(m['bytes'] for m in rows) / 2**20:.1f} MiB "
              f"(before slimming {sum(m['bytes_before'] for m in rows) / 2**20:.1f} MiB)", file=sys.stderr)
EOF

# Check the slimmed wheels where this machine can run them: import and build every task family, in a throwaway venv
# that takes numpy and scipy (JAX's, left out of DIR) from the interpreter running this script, after its own.
here=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [[ $pyver == "$here" ]] && "$python" -c 'import numpy, scipy' 2>/dev/null; then
    "$python" -m venv "$work/check"
    "$work/check/bin/python" -m pip install --quiet --no-index --no-deps "$dir"/*.whl
    "$python" -c 'import numpy, os; print(os.path.dirname(os.path.dirname(numpy.__file__)))' \
        > "$("$work/check/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_numpy.pth"
    MUJOCO_GL=${MUJOCO_GL:-egl} "$work/check/bin/python" - <<'EOF' ||
import sys
from dm_control import suite
from dm_control.locomotion.arenas import mazes  # noqa: F401
from dm_control.locomotion.props import target_sphere  # noqa: F401
from dm_control.locomotion.tasks import random_goal_maze  # noqa: F401
from dm_control.locomotion.walkers import ant, jumping_ball
import labmaze, mujoco  # noqa: E401,F401
for domain, task in (("walker", "walk"), ("cheetah", "run"), ("quadruped", "walk")):
    suite.load(domain, task).physics.render(16, 16)
ant.Ant(), jumping_ball.RollingBallWithHead()
print("wheelhouse: the slimmed wheels import and build the suite and maze tasks", file=sys.stderr)
EOF
        { echo "wheelhouse: the slimmed wheels fail to build the tasks (see above)" >&2; exit 1; }
else
    echo "wheelhouse: not checked here (the target Python is $pyver, this one $here); tests/test_wheelhouse.py checks" >&2
fi

size=$(du -sb "$dir" --exclude=jax-libs | cut -f1)
echo "wheelhouse: $dir holds $((size / 1024 / 1024)) MiB ($size bytes) without jax-libs/"
cat <<EOF
Install it offline on the target (Python $pyver, its own JAX installed), from this repository's root:
    python$pyver -m venv --system-site-packages .venv   # sees the machine's JAX; changes nothing outside .venv
    .venv/bin/pip install --no-index --find-links $dir${jax_libs:+ --find-links $dir/jax-libs} -r $dir/requirements.txt
    .venv/bin/pip install --no-index --no-deps --no-build-isolation -e .
    .venv/bin/python -c "import jax, flax, optax, orbax.checkpoint; print(jax.default_backend(), jax.devices())"
EOF
