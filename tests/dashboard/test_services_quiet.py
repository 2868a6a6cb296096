"""The dashboard's server keeps OpenCV's and FFmpeg's C++ log lines out of its log, as the CLI does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_server_process_sets_the_quiet_switches_unless_the_operator_chose(tmp_path):
    code = ("import os, sys, dashboard.services, cv2; "
            "print(os.environ['OPENCV_LOG_LEVEL'], os.environ['OPENCV_FFMPEG_LOGLEVEL'], "
            "cv2.utils.logging.getLogLevel()); cv2.imread(sys.argv[1])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.png")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["OFF", "-8", "0"]
    assert "[ WARN" not in out.stderr and "imread" not in out.stderr, out.stderr

    env["OPENCV_LOG_LEVEL"] = "WARNING"  # the operator's choice stays
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.png")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[0] == "WARNING" and "imread" in out.stderr
