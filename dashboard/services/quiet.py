"""Keep OpenCV's and FFmpeg's C++ log lines out of the server log (and out of the workers it starts).

OpenCV prints "[ WARN:0@...] global loadsave.cpp ..." past Python, and its FFmpeg prints
"[h264_v4l2m2m @ 0x...] ..." while a video writer tries codecs; what they report reaches
users as the lab's own messages (a skipped file, the next codec tried). The variables are
the ones ``python -m core`` sets without ``--verbose`` (``core.cli.common.NATIVE_QUIET_ENV``);
an operator who sets them to something else keeps their choice.
"""
from __future__ import annotations

import os
import sys

NATIVE_QUIET_ENV: dict[str, str] = {"OPENCV_LOG_LEVEL": "OFF", "OPENCV_FFMPEG_LOGLEVEL": "-8"}


def quiet_native_logs() -> None:
    """Set the variables where unset (FFmpeg reads its own at the first video, workers inherit both), and
    switch OpenCV's logger off in place if cv2 is already imported (it reads its variable only once)."""
    for key, value in NATIVE_QUIET_ENV.items():
        os.environ.setdefault(key, value)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"].upper() in ("OFF", "SILENT"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
