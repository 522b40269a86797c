"""Headless MuJoCo rendering: backend selection, a clear error when no GL loads, and the fast camera.

dm_control's default offscreen render spends most of its time on a 2048-texel shadow map and 4x multisampling of a
640x480 buffer. The fast mode renders the same 64x64 view with a 512-texel shadow map, no multisampling and a
64x64 offscreen buffer, reusing one camera; its images differ from the default by about 1/255 on average
(tests/test_envs.py measures it).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from hrl_core.validation import check_choice  # noqa: E402

RENDER_MODES = ("fast", "default")
GL_PACKAGES = {
    "egl": "libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0",
    "osmesa": "libosmesa6",
    "glfw": "libglfw3 (and a display)",
}


class RendererUnavailable(RuntimeError):
    """No OpenGL backend could be loaded for headless rendering."""


def _gl_error(err: Exception) -> RendererUnavailable:
    backend = os.environ.get("MUJOCO_GL", "")
    packages = GL_PACKAGES.get(backend, GL_PACKAGES["egl"])
    return RendererUnavailable(
        f"MuJoCo could not open an OpenGL context with MUJOCO_GL={backend!r} ({err}). "
        f"Install the Debian packages: apt-get install {packages}; or set MUJOCO_GL to one of egl, osmesa.")


def check_renderer() -> None:
    """Renders one tiny frame; raises RendererUnavailable naming the Debian packages if GL does not load."""
    try:
        from dm_control import mujoco

        physics = mujoco.Physics.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
        physics.render(8, 8)
    except Exception as err:  # dm_control raises several types depending on the backend
        raise _gl_error(err) from err


class PixelCamera:
    """Renders one camera of a physics at size x size, in 'fast' or dm_control's 'default' mode.

    The fast settings must be applied before the physics' GL context exists, so the camera is (re)built for each
    new compiled model (composer tasks may recompile between episodes).
    """

    def __init__(self, size: int, camera: int | str, mode: str = "fast"):
        self.size, self.camera = size, camera
        self.mode = check_choice("render", mode, RENDER_MODES)
        self._model_ptr = None
        self._cam = None

    def _build(self, physics):
        from dm_control.mujoco.engine import Camera

        if self.mode == "fast":
            quality, glob = physics.model.vis.quality, physics.model.vis.global_
            quality.shadowsize = 512
            quality.offsamples = 0
            glob.offwidth = max(self.size, 1)
            glob.offheight = max(self.size, 1)
        camera_id = self.camera
        if isinstance(camera_id, str):
            camera_id = physics.model.name2id(camera_id, "camera")
        try:
            self._cam = Camera(physics, self.size, self.size, camera_id)
        except Exception as err:
            raise _gl_error(err) from err
        self._model_ptr = physics.model.ptr

    def render(self, physics):
        if self.mode == "default":
            try:
                return physics.render(self.size, self.size, camera_id=self.camera)
            except Exception as err:
                if "OpenGL" in str(err) or "GL" in type(err).__name__:
                    raise _gl_error(err) from err
                raise
        if self._cam is None or physics.model.ptr is not self._model_ptr:
            self._build(physics)
        return self._cam.render()
