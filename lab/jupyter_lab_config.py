"""JupyterLab for this workspace (`make lab`): `jupyter lab --config=lab/jupyter_lab_config.py`.

Everything stays in the repository, not in the user's home: the settings defaults (lab/settings/overrides.json: no
news or update pop-ups), and what Lab writes as you work (lab/user-settings, lab/workspaces; git-ignored).
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # noqa: F821 (defined by the traitlets config loader)

c.ServerApp.root_dir = str(HERE.parent)  # the workspace, so outputs/ is browsable too
c.LabApp.default_url = "/lab/tree/notebooks"  # ... opened on the notebooks folder
c.LabApp.app_settings_dir = str(HERE / "settings")
c.LabApp.user_settings_dir = str(HERE / "user-settings")
c.LabApp.workspaces_dir = str(HERE / "workspaces")
# No announcement feed or update check: the server never asks the internet, so Lab has nothing to pop up.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# Only the workspace kernel: python3 from the venv Lab runs in (env paths come before the user's kernels there).
c.KernelSpecManager.allowed_kernelspecs = {"python3"}
c.MappingKernelManager.default_kernel_name = "python3"
# Containers (and this project's CI machines) run as root; the server still listens on localhost only.
c.ServerApp.allow_root = True
