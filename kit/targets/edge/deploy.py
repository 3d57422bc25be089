"""The bundle of the version that holds an alias: fetched for `kit serve edge` (server.py) and
built into a deployable by `kit deploy edge`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kit.errors import SpecError, StepFailure
from kit.targets.edge.node import RUNTIME, node_binary

DEPLOY_README = """# {name} v{version} at the edge

`worker.js` is self-contained: the request handler, TensorFlow.js (CPU backend, pure
JavaScript) and the model bundle inlined. It answers

    GET  /predict?{example}
    POST /predict      one JSON row, or a batch: [{{...}}, ...]
    GET  /health, GET /metadata, GET /openapi.json

## Cloudflare Workers

    npm create cloudflare@latest -- --type hello-world   # once, for wrangler
    # wrangler.toml:  main = "worker.js", compatibility_date = "2024-09-23"
    npx wrangler deploy

## Fastly Compute (JavaScript)

    fastly compute init --language javascript             # once
    # copy worker.js to src/index.js (it registers a `fetch` event listener)
    fastly compute publish

Limits to keep in mind: 128 MB of memory on both; this worker is {size} bytes.
Built by `kit deploy edge {name} --alias {alias}` from registry version {version}.
"""


def fetch_bundle(root: Path, name: str, alias: str, into: Path | None = None) -> tuple[str, Path]:
    """Download the bundle of `name@alias` from the registry into a folder of its own, stamp
    the registry version into its manifest, and check every file's hash."""
    from mlflow.artifacts import download_artifacts

    from kit import store
    from kit.targets.edge import read_bundle, set_bundle_version
    from kit.targets.edge.bundle import find_bundle

    version = _version_by_alias(root, name, alias)
    target = into or root / "workspaces" / "edge" / f"{name}-v{version.version}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    download_artifacts(artifact_uri=version.source, dst_path=str(target), tracking_uri=store.tracking_uri(root))
    bundle = find_bundle(target)
    if bundle is None:
        raise SpecError(f"{name} v{version.version} ({version.source}) holds no edge bundle (no manifest.json); "
                        f"was it registered by an edge pipeline?")
    set_bundle_version(bundle, str(version.version))
    read_bundle(bundle)
    return str(version.version), bundle


def holder(root: Path, name: str, alias: str) -> str:
    """The version that holds `name@alias` now (RegistryError if none)."""
    return str(_version_by_alias(root, name, alias).version)


def _version_by_alias(root: Path, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    from kit import store
    from kit.registry.errors import RegistryError

    try:
        return store.client(root).get_model_version_by_alias(name, alias)
    except MlflowException:
        raise RegistryError(f"no version of {name!r} holds alias {alias!r} (see `kit models {name}`)") from None


def serve_command(bundle: Path, port: int, host: str, reject_out_of_range: bool = False,
                  fallback_url: str | None = None) -> list[str]:
    command = [node_binary(), str(RUNTIME / "src" / "node" / "server.js"), "--bundle", str(bundle),
               "--port", str(port), "--host", host]
    if reject_out_of_range:
        command.append("--reject-out-of-range")
    if fallback_url:
        command += ["--fallback-url", fallback_url]
    return command


DEPLOY_FILES = ("worker.js", "manifest.json", "README.md", "bundle")  # everything `deploy` writes into --out


def deploy(root: Path, name: str, alias: str, out: Path, reject_out_of_range: bool = False,
           force: bool = False) -> tuple[str, Path]:
    """A self-contained deployable folder: worker.js (handler + TF.js + bundle), manifest, README.

    Built beside `out` and moved in at the end. An existing non-empty `out` is refused unless
    `force`; even then only the files listed in DEPLOY_FILES are replaced, nothing else is touched."""
    import json
    import tempfile

    from kit.errors import SpecError

    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise SpecError(f"--out {out}: the folder exists and is not empty; kit deploy writes "
                        f"{', '.join(DEPLOY_FILES)} there. Choose an empty or new folder, or add --force to replace "
                        "those (other files are left alone)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        version, bundle = fetch_bundle(root, name, alias, into=staging / "bundle")
        command = [node_binary(), str(RUNTIME / "scripts" / "build-deploy.mjs"), "--bundle", str(bundle),
                   "--out", str(staging)]
        if reject_out_of_range:
            command.append("--reject-out-of-range")
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise StepFailure(f"building worker.js failed: {done.stderr.strip()}")
        manifest = json.loads((bundle / "manifest.json").read_text())
        example = "&".join(f"{i['name']}=..." for i in manifest["inputs"][:4])
        (staging / "README.md").write_text(DEPLOY_README.format(
            name=name, version=version, alias=alias, example=example, size=(staging / "worker.js").stat().st_size))
        out.mkdir(exist_ok=True)
        for item in DEPLOY_FILES:
            target = out / item
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(staging / item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version, out
