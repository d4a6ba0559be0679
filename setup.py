"""guacbridge's packaging.

The wheel carries the console page: the build step copies ``html/`` and ``sql/`` into
``guacbridge/_data/`` and adds guacamole-common-js from npm (``npm ci`` in ``html/`` when it
is not installed yet). The library itself is never copied into the source tree.
"""
import pathlib
import shutil
import subprocess

from setuptools import Extension, find_packages, setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
GUACAMOLE_JS = HERE / "html/node_modules/guacamole-common-js/dist/esm/guacamole-common.js"


class BuildWithPage(build_py):
    def run(self):
        super().run()
        if not GUACAMOLE_JS.is_file():
            if shutil.which("npm") is None:
                raise SystemExit("building guacbridge needs npm (guacamole-common-js comes "
                                 "from npm); run deploy/install.sh or install npm")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=HERE / "html", check=True)
        data = pathlib.Path(self.build_lib) / "guacbridge" / "_data"
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(HERE / "sql", data / "sql")
        shutil.copytree(HERE / "html", data / "html",
                        ignore=shutil.ignore_patterns("node_modules", "package*.json", "screenshots"))
        (data / "html" / "vendor").mkdir()
        shutil.copy2(GUACAMOLE_JS, data / "html" / "vendor" / GUACAMOLE_JS.name)


setup(
    name="guacbridge",
    version="0.1.0",
    description="One-time browser consoles (VNC, RDP, SSH, telnet) through guacd, "
                "beside Apache Guacamole",
    long_description=(HERE / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["guacbridge", "guacbridge.*"]),
    # The relay's boundary scan in C (protocol.py): optional, a build without a compiler
    # runs the same scan in Python.
    ext_modules=[Extension("guacbridge._framescan", ["guacbridge/_framescan.c"],
                           extra_compile_args=["-O2"], optional=True)],
    package_data={"guacbridge": ["schemas/*.json"]},
    install_requires=[
        "tornado>=6.3",
        "pyguacamole>=0.11",
        "pymysql>=1.1",
        "pika>=1.3",
        "jsonschema>=4.18",
        "ovirt-engine-sdk-python>=4.6",
        "prometheus_client>=0.17",
        "cryptography>=41",
        "requests>=2.31",
        # IPMI 2.0 over LAN: the BMC agent's power control (on, off, reset, cycle)
        "pyghmi>=1.5",
        # images for screenshots and thumbnails: a console's frame drawn from guacd's
        # instructions (PNG, JPEG, WebP in, PNG out)
        "pillow>=10.3",
        # SSH to oVirt's vmconsole proxy: a VM's serial console (asyncio-native, on the
        # cryptography above; key-only login, known-hosts checking)
        "asyncssh>=2.14",
    ],
    extras_require={
        # A faster event loop, used when installed (guacbridge.event_loop, loops.py): about
        # 40 % more relay throughput for the same CPU; guacbridge runs the same without it.
        "uvloop": ["uvloop>=0.17"],
        "test": ["pytest>=8", "hypothesis>=6.100", "playwright>=1.40", "requests>=2.31",
                 "schemathesis>=4", "pyyaml>=6", "build>=1",
                 "cryptography>=41",    # the TLS tests make their own CA
                 "sphinx>=7",           # the docs build with warnings as errors
                 "ruff>=0.6", "mypy>=1.10", "types-PyYAML", "types-requests", "types-PyMySQL",
                 "types-jsonschema",
                 "uvloop>=0.17"],       # the tunnel is tested on both event loops
    },
    entry_points={"console_scripts": ["guacbridge = guacbridge.cli:main"]},
    cmdclass={"build_py": BuildWithPage},
    zip_safe=False,
)
