"""The `myreinflow` command: one clear error line for bad input, help without torch, flags in order."""

import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bc", "--dataset", "myreinflow/pusher/nope-v0", "--no_wandb"], "myreinflow/pusher/nope-v0"),
        (["bc", "--epochs", "-2"], "epochs = -2"),
        (["bc", "--flow", "diffusion"], "invalid choice: 'diffusion'"),
        (["bc", "--flow", "reflw"], "(choose from 'reflow', 'meanflow', 'mlp'); did you mean 'reflow'?"),
        (
            ["bc", "--meanflow_recipe", "paper", "--ratio_r_neq_t", "0.3"],
            "meanflow_recipe = 'paper' is not allowed; it must be 'custom' when",
        ),
        (["eval", "--checkpoint", "missing.pt"], "checkpoint 'missing.pt' does not exist"),
        (["eval", "--checkpoint", "missing.pt", "--act_steps", "-1"], "act_steps = -1 is not allowed"),
        (["eval"], "--checkpoint is required"),
        # the output is checked first, before the checkpoint is read and anything is rolled out
        (["eval", "--checkpoint", "missing.pt", "--out", "."], "--out '.' is a directory; give a file in it"),
        (
            ["eval", "--checkpoint", "missing.pt", "--out", "/proc/forbidden/e.csv"],
            "--out '/proc/forbidden/e.csv' cannot be written",
        ),
        (["eval", "--checkpoint", "."], "checkpoint '.' is a directory without a model.pt"),
    ],
)
def test_bad_input_gets_one_clear_line(minari_root, tmp_path, args, needle):
    result = run_cli(*args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert needle in last and "Traceback" not in result.stderr


def test_help_version_and_flag_order():
    from myreinflow import __version__

    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"myreinflow {__version__}"
    usage = run_cli("bc", "--help").stdout
    assert usage.index("--dataset") < usage.index("--model") < usage.index("--hidden")  # what to run first
    assert "what to run:" in usage and "hyperparameters and options:" in usage
    eval_help = run_cli("eval", "--help").stdout
    assert "(default: auto)" in eval_help and "(0 = the CPUs allocated to the job)" in eval_help


@pytest.mark.parametrize(
    "command", [[], ["data"], ["bc"], ["fql"], ["mfql"], ["toy2d"], ["eval"], ["summarize", "eval"]]
)
def test_help_needs_no_torch(command):
    """Every command's `--help` without importing torch (its import alone takes about a second): the
    options live in the torch-free `myreinflow.configs`."""
    code = (
        "import sys\nfrom myreinflow.cli import main\n"
        f"try:\n    main({[*command, '--help']!r})\nexcept SystemExit:\n    pass\n"
        "print('torch imported:', 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("torch imported: False") and "usage: myreinflow" in out


def test_default_remote_dataset_offline_fails_fast_with_the_local_alternative(minari_root, tmp_path):
    start = time.monotonic()
    result = run_cli("bc", "--no_wandb", "--out", str(tmp_path / "run"))
    assert time.monotonic() - start < 30 and result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "'mujoco/pusher/expert-v0'" in line and "could not be downloaded" in line
    assert "myreinflow data --dataset myreinflow/pusher/expert-v0" in line
    assert not (tmp_path / "run").exists()


def test_corrupt_checkpoint_and_unknown_yaml_key(minari_root, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage")
    result = run_cli("eval", "--checkpoint", str(bad), "--out", str(tmp_path / "e.csv"))
    assert result.returncode == 2 and "corrupt or not a torch file" in result.stderr
    assert not (tmp_path / "e.csv").exists()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1\nlearning_rate: 0.1\n")
    result = run_cli("bc", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "unknown key 'learning_rate'" in result.stderr
    assert not (tmp_path / "o").exists()


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "myreinflow", *args], capture_output=True, text=True, timeout=120, env=env
    )
